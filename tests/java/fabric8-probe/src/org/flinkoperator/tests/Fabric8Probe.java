package org.flinkoperator.tests;

import org.apache.flink.configuration.Configuration;
import org.apache.flink.kubernetes.configuration.KubernetesLeaderElectionConfiguration;
import org.apache.flink.kubernetes.kubeclient.FlinkKubeClient;
import org.apache.flink.kubernetes.kubeclient.FlinkKubeClientFactory;
import org.apache.flink.kubernetes.kubeclient.resources.KubernetesConfigMap;
import org.apache.flink.kubernetes.kubeclient.resources.KubernetesLeaderElector;
import org.apache.flink.kubernetes.kubeclient.resources.KubernetesPod;
import org.apache.flink.kubernetes.shaded.io.fabric8.kubernetes.api.model.ConfigMap;
import org.apache.flink.kubernetes.shaded.io.fabric8.kubernetes.api.model.ConfigMapBuilder;
import org.apache.flink.kubernetes.shaded.io.fabric8.kubernetes.api.model.OwnerReference;
import org.apache.flink.kubernetes.shaded.io.fabric8.kubernetes.api.model.Pod;
import org.apache.flink.kubernetes.shaded.io.fabric8.kubernetes.api.model.PodBuilder;
import org.apache.flink.kubernetes.shaded.io.fabric8.kubernetes.api.model.apps.Deployment;
import org.apache.flink.kubernetes.shaded.io.fabric8.kubernetes.api.model.apps.DeploymentBuilder;
import org.apache.flink.kubernetes.shaded.io.fabric8.kubernetes.client.KubernetesClientException;
import org.apache.flink.kubernetes.shaded.io.fabric8.kubernetes.client.NamespacedKubernetesClient;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * Drives the API stand-in with Flink's own Kubernetes client (the shaded fabric8 client in
 * flink-dist, configured from the environment as in a pod), making the calls a native
 * JobManager makes: its Deployment looked up, TaskManager pods created with their owner,
 * listed, watched and stopped, ConfigMaps created and updated under optimistic concurrency,
 * leader election on a ConfigMap lock, and the cluster's cleanup. Prints one line per step
 * ("ok <step>" or "FAIL <step>: <why>") and exits 1 on the first failure.
 */
public class Fabric8Probe {
    private static final long WAIT_SECONDS = 20;

    public static void main(String[] args) throws Exception {
        String clusterId = args.length > 0 ? args[0] : "probe";
        Configuration conf = new Configuration();
        conf.setString("kubernetes.namespace", "default");
        conf.setString("kubernetes.cluster-id", clusterId);
        FlinkKubeClientFactory factory = FlinkKubeClientFactory.getInstance();
        NamespacedKubernetesClient k8s = factory.createFabric8ioKubernetesClient(conf);
        FlinkKubeClient flink = factory.fromConfiguration(conf, "probe");
        try {
            run(clusterId, conf, k8s, flink);
        } catch (Throwable t) {
            System.out.println("FAIL " + step + ": " + t);
            t.printStackTrace();
            System.out.flush();
            System.exit(1);
        }
        flink.close();
        k8s.close();
        System.out.println("done");
        System.out.flush();
        System.exit(0);
    }

    private static String step = "start";

    private static void ok(String what) {
        System.out.println("ok " + what);
        System.out.flush();
    }

    private static void check(boolean condition, String why) {
        if (!condition) {
            throw new AssertionError(why);
        }
    }

    private static Map<String, String> labels(String clusterId, String component) {
        Map<String, String> labels = new HashMap<>();
        labels.put("type", "flink-native-kubernetes");
        labels.put("app", clusterId);
        labels.put("component", component);
        return labels;
    }

    private static KubernetesPod taskManager(String name, Map<String, String> labels) {
        Pod pod =
                new PodBuilder()
                        .withNewMetadata()
                        .withName(name)
                        .withLabels(labels)
                        .endMetadata()
                        .withNewSpec()
                        .withRestartPolicy("Never")
                        .addNewContainer()
                        .withName("flink-main-container")
                        .withImage("flink:2.3")
                        .endContainer()
                        .endSpec()
                        .build();
        return new KubernetesPod(pod);
    }

    private static void run(
            String clusterId, Configuration conf, NamespacedKubernetesClient k8s, FlinkKubeClient flink)
            throws Exception {
        Map<String, String> jm = labels(clusterId, "jobmanager");
        Map<String, String> tm = labels(clusterId, "taskmanager");

        step = "the JobManager Deployment is created";
        Deployment deployment =
                new DeploymentBuilder()
                        .withNewMetadata()
                        .withName(clusterId)
                        .withLabels(jm)
                        .endMetadata()
                        .withNewSpec()
                        .withReplicas(0)
                        .withNewSelector()
                        .withMatchLabels(jm)
                        .endSelector()
                        .withNewTemplate()
                        .withNewMetadata()
                        .withLabels(jm)
                        .endMetadata()
                        .withNewSpec()
                        .addNewContainer()
                        .withName("flink-main-container")
                        .withImage("flink:2.3")
                        .endContainer()
                        .endSpec()
                        .endTemplate()
                        .endSpec()
                        .build();
        Deployment created = k8s.apps().deployments().resource(deployment).create();
        String uid = created.getMetadata().getUid();
        check(uid != null && !uid.isEmpty(), "the created Deployment has no uid");
        ok(step);

        step = "TaskManager pods are watched";
        BlockingQueue<String> events = new LinkedBlockingQueue<>();
        flink.watchPodsAndDoCallback(
                        tm,
                        new FlinkKubeClient.WatchCallbackHandler<KubernetesPod>() {
                            public void onAdded(List<KubernetesPod> pods) {
                                pods.forEach(p -> events.add("ADDED " + p.getName()));
                            }

                            public void onModified(List<KubernetesPod> pods) {
                                pods.forEach(p -> events.add("MODIFIED " + p.getName()));
                            }

                            public void onDeleted(List<KubernetesPod> pods) {
                                pods.forEach(p -> events.add("DELETED " + p.getName()));
                            }

                            public void onError(List<KubernetesPod> pods) {
                                pods.forEach(p -> events.add("ERROR " + p.getName()));
                            }

                            public void handleError(Throwable throwable) {
                                events.add("FAILED " + throwable);
                            }
                        })
                .get(WAIT_SECONDS, TimeUnit.SECONDS);
        ok(step);

        step = "a TaskManager pod is created, owned by the JobManager Deployment";
        String first = clusterId + "-taskmanager-1-1";
        flink.createTaskManagerPod(taskManager(first, tm)).get(WAIT_SECONDS, TimeUnit.SECONDS);
        Pod stored = k8s.pods().withName(first).get();
        check(stored != null, "the pod is not stored");
        List<OwnerReference> owners = stored.getMetadata().getOwnerReferences();
        check(
                owners.size() == 1
                        && owners.get(0).getUid().equals(uid)
                        && "Deployment".equals(owners.get(0).getKind())
                        && Boolean.TRUE.equals(owners.get(0).getController()),
                "owner references: " + owners);
        ok(step);

        step = "the watch sees the new pod";
        awaitEvent(events, "ADDED " + first);
        ok(step);

        step = "TaskManager pods are listed by their labels";
        List<KubernetesPod> listed = flink.getPodsWithLabels(tm);
        check(
                listed.size() == 1 && listed.get(0).getName().equals(first),
                "listed: " + listed.size());
        ok(step);

        // As in a JobManager with Kubernetes HA: the leader elector creates the cluster
        // ConfigMap with its lock record; the leader then writes its data into it.
        step = "leader election on a ConfigMap lock";
        String name = clusterId + "-cluster-config-map";
        String lockIdentity = "probe-contender-" + System.nanoTime();
        CountDownLatch leading = new CountDownLatch(1);
        KubernetesLeaderElector elector =
                flink.createLeaderElector(
                        new KubernetesLeaderElectionConfiguration(name, lockIdentity, conf),
                        new KubernetesLeaderElector.LeaderCallbackHandler() {
                            public void isLeader() {
                                leading.countDown();
                            }

                            public void notLeader() {}
                        });
        elector.run();
        check(leading.await(WAIT_SECONDS, TimeUnit.SECONDS), "never became the leader");
        Optional<KubernetesConfigMap> read = flink.getConfigMap(name);
        check(read.isPresent(), "the lock's ConfigMap is not stored");
        check(KubernetesLeaderElector.hasLeadership(read.get(), lockIdentity), "annotations: " + read.get().getAnnotations());
        ok(step);

        step = "the leader writes its data by check-and-update";
        for (String value : new String[] {"1", "2"}) {
            boolean updated =
                    flink.checkAndUpdateConfigMap(
                                    name,
                                    current -> {
                                        if (!KubernetesLeaderElector.hasLeadership(current, lockIdentity)) {
                                            return Optional.empty();
                                        }
                                        current.getData().put("counter", value);
                                        return Optional.of(current);
                                    })
                            .get(WAIT_SECONDS, TimeUnit.SECONDS);
            check(updated, "not updated to " + value);
        }
        read = flink.getConfigMap(name);
        check("2".equals(read.get().getData().get("counter")), "the update is not stored: " + read.get().getData());
        String staleVersion = read.get().getResourceVersion();
        ok(step);

        step = "the leader renews its lock without losing the data";
        // The retry period is 5 s: the renewal (a merge patch carrying the resource version it
        // read) lands meanwhile.
        Thread.sleep(7_000);
        KubernetesConfigMap renewed = flink.getConfigMap(name).get();
        check(!renewed.getResourceVersion().equals(staleVersion), "no renewal was written");
        check(KubernetesLeaderElector.hasLeadership(renewed, lockIdentity), "annotations: " + renewed.getAnnotations());
        check("2".equals(renewed.getData().get("counter")), "the renewal lost the data: " + renewed.getData());
        ok(step);

        step = "an update from a stale resource version is refused with 409";
        ConfigMap stale =
                new ConfigMapBuilder()
                        .withNewMetadata()
                        .withName(name)
                        .withResourceVersion(staleVersion)
                        .endMetadata()
                        .addToData("counter", "3")
                        .build();
        try {
            k8s.configMaps().resource(stale).update();
            throw new AssertionError("a stale update was accepted");
        } catch (KubernetesClientException e) {
            check(e.getCode() == 409, "expected 409, got " + e.getCode() + ": " + e.getMessage());
        }
        check(
                "2".equals(flink.getConfigMap(name).get().getData().get("counter")),
                "the stale update changed the data");
        elector.stop();
        ok(step);

        step = "a TaskManager pod is stopped and the watch sees it go";
        flink.stopPod(first).get(WAIT_SECONDS, TimeUnit.SECONDS);
        awaitEvent(events, "DELETED " + first);
        ok(step);

        step = "stopping the cluster deletes the Deployment and what it owns";
        String second = clusterId + "-taskmanager-1-2";
        flink.createTaskManagerPod(taskManager(second, tm)).get(WAIT_SECONDS, TimeUnit.SECONDS);
        awaitEvent(events, "ADDED " + second);
        flink.stopAndCleanupCluster(clusterId);
        awaitEvent(events, "DELETED " + second);
        check(k8s.apps().deployments().withName(clusterId).get() == null, "the Deployment is still there");
        ok(step);

        step = "the ConfigMap is deleted";
        flink.deleteConfigMap(name).get(WAIT_SECONDS, TimeUnit.SECONDS);
        check(!flink.getConfigMap(name).isPresent(), "the ConfigMap is still there");
        ok(step);
    }

    private static void awaitEvent(BlockingQueue<String> events, String wanted) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(WAIT_SECONDS);
        StringBuilder seen = new StringBuilder();
        while (System.nanoTime() < deadline) {
            String event = events.poll(250, TimeUnit.MILLISECONDS);
            if (event == null) {
                continue;
            }
            if (event.startsWith("FAILED")) {
                throw new AssertionError("the watch failed: " + event);
            }
            if (event.equals(wanted)) {
                return;
            }
            seen.append(event).append("; ");
        }
        throw new AssertionError("no " + wanted + " within " + WAIT_SECONDS + " s (seen: " + seen + ")");
    }
}
