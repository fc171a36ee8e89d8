package org.flinkoperator.examples;

import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.functions.RichMapFunction;
import org.apache.flink.api.common.state.ListState;
import org.apache.flink.api.common.state.ListStateDescriptor;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.connector.source.lib.NumberSequenceSource;
import org.apache.flink.api.connector.source.util.ratelimit.RateLimiter;
import org.apache.flink.api.connector.source.util.ratelimit.RateLimiterStrategy;
import org.apache.flink.connector.datagen.source.DataGeneratorSource;
import org.apache.flink.connector.datagen.source.GeneratorFunction;
import org.apache.flink.metrics.Gauge;
import org.apache.flink.runtime.state.FunctionInitializationContext;
import org.apache.flink.runtime.state.FunctionSnapshotContext;
import org.apache.flink.streaming.api.checkpoint.CheckpointedFunction;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.sink.v2.DiscardingSink;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * An unbounded, stateful job for the operator's tests and examples.
 *
 * <p>Numbers flow from a rate-limited sequence source into a keyed counter that burns a
 * configurable amount of CPU per record (so one vertex can be made busy for the autoscaler)
 * and keeps two kinds of state: a count per key (keyed state) and the
 * records it has counted in total (operator state). The total is exported as the gauge
 * {@code runningCount}: after a restore from a savepoint or checkpoint it continues from where
 * it was, after a stateless start it begins at zero, which is how tests prove state survived.
 *
 * <p>Arguments: {@code --rate N} records per second for the whole job (default 1000),
 * {@code --rate-file PATH} a file holding the rate, read every second while it exists (so a
 * test changes the load without restarting the job), {@code --cost-micros N} CPU time per
 * record in the counter (default 0), {@code --keys N} number of distinct keys (default 128),
 * {@code --fail-while-file PATH} the counter fails (throws) while that file exists, so a test
 * makes the job restart again and again and lets it recover by deleting the file.
 *
 * <p>The source waits for its rate limiter without holding the task thread, so it reports idle
 * time rather than busy time while it waits, as a real source waiting for input does.
 */
public final class StatefulCounterJob {

    private StatefulCounterJob() {}

    public static void main(String[] args) throws Exception {
        final long rate = longArg(args, "--rate", 1000);
        final long costMicros = longArg(args, "--cost-micros", 0);
        final long keys = longArg(args, "--keys", 128);
        final String rateFile = stringArg(args, "--rate-file", null);
        final String failFile = stringArg(args, "--fail-while-file", null);

        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        DataGeneratorSource<Long> numbers = new DataGeneratorSource<>(
                (GeneratorFunction<Long, Long>) n -> n,
                Long.MAX_VALUE,
                new AdjustableRate(rate, rateFile),
                Types.LONG);
        env.fromSource(numbers, WatermarkStrategy.noWatermarks(), "numbers")
                .uid("numbers")
                .keyBy(n -> n % keys)
                .map(new Counter(costMicros, failFile))
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

    static String stringArg(String[] args, String name, String fallback) {
        for (int i = 0; i + 1 < args.length; i++) {
            if (args[i].equals(name)) {
                return args[i + 1];
            }
        }
        return fallback;
    }

    /** The job's rate, from {@code --rate} or the rate file; each subtask takes its share. */
    static final class AdjustableRate implements RateLimiterStrategy<NumberSequenceSource.NumberSequenceSplit> {
        private final long rate;
        private final String rateFile;

        AdjustableRate(long rate, String rateFile) {
            this.rate = rate;
            this.rateFile = rateFile;
        }

        @Override
        public RateLimiter<NumberSequenceSource.NumberSequenceSplit> createRateLimiter(int parallelism) {
            return new Limiter(rate, rateFile, parallelism);
        }
    }

    /**
     * Paces records without blocking the task thread: a permit that is not due yet is a future
     * completed by a timer, so the source task is idle (not busy) while it waits.
     */
    static final class Limiter implements RateLimiter<NumberSequenceSource.NumberSequenceSplit> {
        private static final ScheduledExecutorService TIMER = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "stateful-counter-rate");
            t.setDaemon(true);
            return t;
        });
        private static final long NO_CATCH_UP_NANOS = 100_000_000L;
        private final String rateFile;
        private final int parallelism;
        private double jobRate;
        private long rateReadAt;
        private long nextDue = System.nanoTime();

        Limiter(long rate, String rateFile, int parallelism) {
            this.jobRate = rate;
            this.rateFile = rateFile;
            this.parallelism = Math.max(1, parallelism);
            this.rateReadAt = System.nanoTime();
            readRate();
        }

        private void readRate() {
            if (rateFile == null) {
                return;
            }
            try {
                String text = new String(Files.readAllBytes(Paths.get(rateFile)), StandardCharsets.UTF_8).trim();
                jobRate = Double.parseDouble(text);
            } catch (Exception e) {
                // Missing or half-written: keep the last rate.
            }
        }

        @Override
        public CompletionStage<Void> acquire(int permits) {
            long now = System.nanoTime();
            if (now - rateReadAt > 1_000_000_000L) {
                rateReadAt = now;
                readRate();
            }
            double perSubtask = Math.max(1e-3, jobRate / parallelism);
            // After a stall (backpressure), do not burst to make up for more than 100 ms.
            nextDue = Math.max(nextDue, now - NO_CATCH_UP_NANOS) + (long) (permits * 1e9 / perSubtask);
            long wait = nextDue - now;
            if (wait <= 1_000_000L) {
                return CompletableFuture.completedFuture(null);
            }
            CompletableFuture<Void> due = new CompletableFuture<>();
            TIMER.schedule(() -> due.complete(null), wait, TimeUnit.NANOSECONDS);
            return due;
        }
    }

    /** Counts per key and in total, spending {@code costMicros} of CPU per record. */
    static final class Counter extends RichMapFunction<Long, Long> implements CheckpointedFunction {
        private final long costMicros;
        private final String failFile;
        private transient ValueState<Long> perKey;
        private transient ListState<Long> totalState;
        private transient long total;
        private transient long sink;
        private transient long failFileCheckedAt;

        Counter(long costMicros, String failFile) {
            this.costMicros = costMicros;
            this.failFile = failFile;
        }

        @Override
        public void open(OpenContext context) {
            perKey = getRuntimeContext().getState(new ValueStateDescriptor<>("per-key-count", Long.class));
            getRuntimeContext().getMetricGroup().gauge("runningCount", (Gauge<Long>) () -> total);
            failFileCheckedAt = System.nanoTime() - 1_000_000_000L;
        }

        @Override
        public Long map(Long value) throws Exception {
            if (failFile != null && System.nanoTime() - failFileCheckedAt > 100_000_000L) {
                failFileCheckedAt = System.nanoTime();
                if (Files.exists(Paths.get(failFile))) {
                    throw new IllegalStateException("injected failure: " + failFile + " exists");
                }
            }
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
