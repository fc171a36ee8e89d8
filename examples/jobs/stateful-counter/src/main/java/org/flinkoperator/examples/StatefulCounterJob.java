package org.flinkoperator.examples;

import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.functions.RichMapFunction;
import org.apache.flink.api.common.state.ListState;
import org.apache.flink.api.common.state.ListStateDescriptor;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.connector.source.lib.NumberSequenceSource;
import org.apache.flink.metrics.Gauge;
import org.apache.flink.runtime.state.FunctionInitializationContext;
import org.apache.flink.runtime.state.FunctionSnapshotContext;
import org.apache.flink.streaming.api.checkpoint.CheckpointedFunction;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.sink.v2.DiscardingSink;

/**
 * An unbounded, stateful job for the operator's tests and examples.
 *
 * <p>Numbers flow from a sequence source through a throttle (the input rate) into a keyed
 * counter that burns a configurable amount of CPU per record (so one vertex can be made busy
 * for the autoscaler) and keeps two kinds of state: a count per key (keyed state) and the
 * records it has counted in total (operator state). The total is exported as the gauge
 * {@code runningCount}: after a restore from a savepoint or checkpoint it continues from where
 * it was, after a stateless start it begins at zero, which is how tests prove state survived.
 *
 * <p>Arguments: {@code --rate N} records per second for the whole job (default 1000),
 * {@code --cost-micros N} CPU time per record in the counter (default 0),
 * {@code --keys N} number of distinct keys (default 128).
 */
public final class StatefulCounterJob {

    private StatefulCounterJob() {}

    public static void main(String[] args) throws Exception {
        final long rate = longArg(args, "--rate", 1000);
        final long costMicros = longArg(args, "--cost-micros", 0);
        final long keys = longArg(args, "--keys", 128);

        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        env.fromSource(new NumberSequenceSource(0, Long.MAX_VALUE), WatermarkStrategy.noWatermarks(), "numbers")
                .uid("numbers")
                .map(new Throttle(rate))
                .uid("throttle")
                .name("throttle")
                .keyBy(n -> n % keys)
                .map(new Counter(costMicros))
                .uid("count")
                .name("count")
                .sinkTo(new DiscardingSink<>())
                .uid("sink")
                .name("sink");
        env.execute("stateful-counter");
    }

    static long longArg(String[] args, String name, long fallback) {
        for (int i = 0; i + 1 < args.length; i++) {
            if (args[i].equals(name)) {
                try {
                    return Long.parseLong(args[i + 1]);
                } catch (NumberFormatException e) {
                    throw new IllegalArgumentException(name + " must be a whole number, got " + args[i + 1], e);
                }
            }
        }
        return fallback;
    }

    /** Holds each subtask to its share of the job's rate. */
    static final class Throttle extends RichMapFunction<Long, Long> {
        private final long jobRate;
        private transient double perSubtaskRate;
        private transient long started;
        private transient long emitted;

        Throttle(long jobRate) {
            this.jobRate = jobRate;
        }

        @Override
        public void open(OpenContext context) {
            int parallelism = getRuntimeContext().getTaskInfo().getNumberOfParallelSubtasks();
            perSubtaskRate = Math.max(1e-3, (double) jobRate / parallelism);
            started = System.nanoTime();
            emitted = 0;
        }

        @Override
        public Long map(Long value) throws Exception {
            emitted++;
            long due = started + (long) (emitted * 1e9 / perSubtaskRate);
            long wait = due - System.nanoTime();
            // Sleep in steps of at least 2 ms: shorter sleeps overshoot and cap the rate.
            if (wait > 2_000_000) {
                Thread.sleep(wait / 1_000_000, (int) (wait % 1_000_000));
            }
            return value;
        }
    }

    /** Counts per key and in total, spending {@code costMicros} of CPU per record. */
    static final class Counter extends RichMapFunction<Long, Long> implements CheckpointedFunction {
        private final long costMicros;
        private transient ValueState<Long> perKey;
        private transient ListState<Long> totalState;
        private transient long total;
        private transient long sink;

        Counter(long costMicros) {
            this.costMicros = costMicros;
        }

        @Override
        public void open(OpenContext context) {
            perKey = getRuntimeContext().getState(new ValueStateDescriptor<>("per-key-count", Long.class));
            getRuntimeContext().getMetricGroup().gauge("runningCount", (Gauge<Long>) () -> total);
        }

        @Override
        public Long map(Long value) throws Exception {
            if (costMicros > 0) {
                long end = System.nanoTime() + costMicros * 1000;
                long x = value;
                while (System.nanoTime() < end) {
                    x = x * 6364136223846793005L + 1442695040888963407L;
                }
                sink ^= x;
            }
            Long count = perKey.value();
            perKey.update(count == null ? 1L : count + 1);
            total++;
            return value;
        }

        @Override
        public void snapshotState(FunctionSnapshotContext context) throws Exception {
            totalState.update(java.util.Collections.singletonList(total));
        }

        @Override
        public void initializeState(FunctionInitializationContext context) throws Exception {
            totalState = context.getOperatorStateStore()
                    .getListState(new ListStateDescriptor<>("total-count", Long.class));
            total = 0;
            for (Long part : totalState.get()) {
                total += part;
            }
        }
    }
}
