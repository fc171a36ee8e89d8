package org.flinkoperator.tests;

import java.util.Collections;
import java.util.HashMap;

import org.apache.flink.client.deployment.ClusterSpecification;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.GlobalConfiguration;
import org.apache.flink.configuration.MemorySize;
import org.apache.flink.kubernetes.configuration.KubernetesConfigOptionsInternal;
import org.apache.flink.kubernetes.entrypoint.KubernetesWorkerResourceSpecFactory;
import org.apache.flink.kubernetes.kubeclient.FlinkPod;
import org.apache.flink.kubernetes.kubeclient.decorators.AbstractKubernetesStepDecorator;
import org.apache.flink.kubernetes.kubeclient.decorators.CmdJobManagerDecorator;
import org.apache.flink.kubernetes.kubeclient.decorators.EnvSecretsDecorator;
import org.apache.flink.kubernetes.kubeclient.decorators.ExternalServiceDecorator;
import org.apache.flink.kubernetes.kubeclient.decorators.InitJobManagerDecorator;
import org.apache.flink.kubernetes.kubeclient.decorators.InternalServiceDecorator;
import org.apache.flink.kubernetes.kubeclient.decorators.MountSecretsDecorator;
import org.apache.flink.kubernetes.kubeclient.factory.KubernetesJobManagerFactory;
import org.apache.flink.kubernetes.shaded.io.fabric8.kubernetes.api.model.HasMetadata;
import org.apache.flink.kubernetes.shaded.io.fabric8.kubernetes.api.model.Pod;
import org.apache.flink.kubernetes.shaded.io.fabric8.kubernetes.api.model.PodBuilder;
import org.apache.flink.kubernetes.kubeclient.factory.KubernetesTaskManagerFactory;
import org.apache.flink.kubernetes.kubeclient.parameters.KubernetesJobManagerParameters;
import org.apache.flink.kubernetes.kubeclient.parameters.KubernetesTaskManagerParameters;
import org.apache.flink.kubernetes.shaded.io.fabric8.kubernetes.client.utils.Serialization;
import org.apache.flink.runtime.clusterframework.ContaineredTaskManagerParameters;
import org.apache.flink.runtime.clusterframework.TaskExecutorProcessSpec;
import org.apache.flink.runtime.clusterframework.TaskExecutorProcessUtils;

/**
 * Runs Flink's own Kubernetes decorators on the configuration in the directory given
 * (config.yaml) and prints one JSON object: the JobManager pod and its Services as Flink's client
 * decorates them (KubernetesJobManagerFactory's steps that read options: init, secrets as env and
 * as volumes, command, internal and external Service), the JobManager replicas, and one
 * TaskManager pod from KubernetesTaskManagerFactory, as a native JobManager creates it. Nothing is
 * sent anywhere. The JobManager's memory is jobmanager.memory.process.size, its entrypoint class
 * the application one.
 *
 * <p>The steps run one by one instead of through KubernetesJobManagerFactory because its
 * FlinkConfMountDecorator cannot write a configuration in which one key is a prefix of another
 * (kubernetes.jobmanager.cpu and kubernetes.jobmanager.cpu.limit-factor): Flink 2.3 fails with a
 * ClassCastException there. Whether it did is printed as "factoryError".
 */
public final class Decorators {
    public static void main(String[] args) throws Exception {
        Configuration conf = GlobalConfiguration.loadConfiguration(args[0]);
        conf.set(
                KubernetesConfigOptionsInternal.ENTRY_POINT_CLASS,
                "org.apache.flink.kubernetes.entrypoint.KubernetesApplicationClusterEntrypoint");
        int jmMemory =
                MemorySize.parse(conf.getString("jobmanager.memory.process.size", "1600m"))
                        .getMebiBytes();
        ClusterSpecification spec =
                new ClusterSpecification.ClusterSpecificationBuilder()
                        .setMasterMemoryMB(jmMemory)
                        .setTaskManagerMemoryMB(1024)
                        .setSlotsPerTaskManager(1)
                        .createClusterSpecification();
        KubernetesJobManagerParameters jmParameters = new KubernetesJobManagerParameters(conf, spec);
        String factoryError = null;
        try {
            KubernetesJobManagerFactory.buildKubernetesJobManagerSpecification(
                    new FlinkPod.Builder().build(), jmParameters);
        } catch (RuntimeException e) {
            factoryError = String.valueOf(e);
        }
        AbstractKubernetesStepDecorator[] steps = {
            new InitJobManagerDecorator(jmParameters),
            new EnvSecretsDecorator(jmParameters),
            new MountSecretsDecorator(jmParameters),
            new CmdJobManagerDecorator(jmParameters),
            new InternalServiceDecorator(jmParameters),
            new ExternalServiceDecorator(jmParameters),
        };
        FlinkPod jmPod = new FlinkPod.Builder().build();
        StringBuilder services = new StringBuilder();
        for (AbstractKubernetesStepDecorator step : steps) {
            jmPod = step.decorateFlinkPod(jmPod);
            for (HasMetadata resource : step.buildAccompanyingKubernetesResources()) {
                if (services.length() > 0) {
                    services.append(',');
                }
                services.append(Serialization.asJson(resource));
            }
        }
        Pod jm =
                new PodBuilder(jmPod.getPodWithoutMainContainer())
                        .editOrNewSpec()
                        .addToContainers(jmPod.getMainContainer())
                        .endSpec()
                        .build();
        // As a native ResourceManager sizes its workers (kubernetes.taskmanager.cpu.amount).
        TaskExecutorProcessSpec process =
                TaskExecutorProcessUtils.processSpecFromWorkerResourceSpec(
                        conf,
                        KubernetesWorkerResourceSpecFactory.INSTANCE
                                .createDefaultWorkerResourceSpec(conf));
        KubernetesTaskManagerParameters tmParameters =
                new KubernetesTaskManagerParameters(
                        conf,
                        conf.getString("kubernetes.cluster-id", "cluster") + "-taskmanager-1-1",
                        "",
                        "",
                        ContaineredTaskManagerParameters.create(conf, process),
                        new HashMap<>(),
                        Collections.emptySet());
        Object tm =
                KubernetesTaskManagerFactory.buildTaskManagerKubernetesPod(
                                new FlinkPod.Builder().build(), tmParameters)
                        .getInternalResource();
        StringBuilder out = new StringBuilder("{\"jobmanager\":");
        out.append(Serialization.asJson(jm));
        out.append(",\"replicas\":").append(jmParameters.getReplicas());
        out.append(",\"services\":[").append(services).append(']');
        out.append(",\"taskmanager\":").append(Serialization.asJson(tm));
        out.append(",\"factoryError\":")
                .append(factoryError == null ? "null" : Serialization.asJson(factoryError));
        out.append('}');
        System.out.println(out);
    }
}
