package org.flinkoperator.tests;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;

import org.apache.flink.configuration.Configuration;
import org.apache.flink.kubernetes.configuration.KubernetesLeaderElectionConfiguration;
import org.apache.flink.kubernetes.kubeclient.FlinkKubeClient;
import org.apache.flink.kubernetes.kubeclient.FlinkKubeClientFactory;
import org.apache.flink.kubernetes.kubeclient.KubernetesConfigMapSharedWatcher;
import org.apache.flink.kubernetes.kubeclient.resources.KubernetesConfigMap;
import org.apache.flink.kubernetes.kubeclient.resources.KubernetesLeaderElector;
import org.apache.flink.kubernetes.kubeclient.resources.KubernetesPod;

/**
 * The API load of N idle native JobManagers with Kubernetes HA, made by Flink's own client (the
 * shaded fabric8 in flink-dist, configured from the environment as in a pod): each watches its
 * TaskManager pods by label, watches its HA ConfigMap through the shared watcher, and runs
 * Flink's leader election on that ConfigMap with Flink's default timings (renewal every 5 s).
 * Prints "ready" once all are leaders, holds the load for the seconds given, then "done". What a
 * JobManager does beyond that (checkpoint pointers written on each completed checkpoint,
 * TaskManager pods created on demand) is not simulated.
 */
public final class NativeLoad {
    private static final class Quiet<T> implements FlinkKubeClient.WatchCallbackHandler<T> {
        public void onAdded(List<T> resources) {}

        public void onModified(List<T> resources) {}

        public void onDeleted(List<T> resources) {}

        public void onError(List<T> resources) {}

        public void handleError(Throwable throwable) {
            System.out.println("watch error: " + throwable);
        }
    }

    public static void main(String[] args) throws Exception {
        int clusters = Integer.parseInt(args[0]);
        long seconds = Long.parseLong(args[1]);
        FlinkKubeClientFactory factory = FlinkKubeClientFactory.getInstance();
        ExecutorService callbacks = Executors.newFixedThreadPool(4);
        // Held so nothing is collected while the load runs; System.exit ends it.
        List<Object> open = new ArrayList<>();
        java.util.concurrent.CountDownLatch leading =
                new java.util.concurrent.CountDownLatch(clusters);
        for (int i = 0; i < clusters; i++) {
            String clusterId = "load-" + i;
            Configuration conf = new Configuration();
            conf.setString("kubernetes.namespace", "default");
            conf.setString("kubernetes.cluster-id", clusterId);
            FlinkKubeClient client = factory.fromConfiguration(conf, clusterId);
            Map<String, String> taskManagers = new HashMap<>();
            taskManagers.put("app", clusterId);
            taskManagers.put("component", "taskmanager");
            taskManagers.put("type", "flink-native-kubernetes");
            open.add(client.watchPodsAndDoCallback(taskManagers, new Quiet<KubernetesPod>())
                    .get(60, TimeUnit.SECONDS));
            String configMap = clusterId + "-cluster-config-map";
            KubernetesConfigMapSharedWatcher watcher = client.createConfigMapSharedWatcher(configMap);
            open.add(watcher.watch(configMap, new Quiet<KubernetesConfigMap>(), callbacks));
            open.add(watcher);
            KubernetesLeaderElector elector =
                    client.createLeaderElector(
                            new KubernetesLeaderElectionConfiguration(
                                    configMap, "jobmanager-" + i, conf),
                            new KubernetesLeaderElector.LeaderCallbackHandler() {
                                public void isLeader() {
                                    leading.countDown();
                                }

                                public void notLeader() {}
                            });
            elector.run();
            open.add(client);
        }
        if (!leading.await(120, TimeUnit.SECONDS)) {
            System.out.println("not every cluster became leader: " + leading.getCount() + " left");
            System.exit(1);
        }
        System.out.println("ready");
        System.out.flush();
        Thread.sleep(seconds * 1000);
        System.out.println("done");
        System.out.flush();
        System.exit(0);
    }
}
