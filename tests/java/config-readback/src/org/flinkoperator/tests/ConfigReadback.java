package org.flinkoperator.tests;

import java.io.File;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import org.apache.flink.client.deployment.application.ApplicationConfiguration;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.ConfigurationFileMigrationUtils;
import org.apache.flink.configuration.GlobalConfiguration;

/**
 * Reads rendered Flink configuration directories back with Flink's own parsers and prints, per
 * directory, one JSON line: every key and value Flink read, and the program arguments as Flink's
 * list option gives them. A directory holds config.yaml (Flink 2's standard YAML, read by
 * GlobalConfiguration) or flink-conf.yaml (Flink 1's line format, read by the legacy loader Flink
 * keeps for migration). A file Flink cannot parse prints {"error": ...}.
 */
public final class ConfigReadback {
    public static void main(String[] args) {
        for (String dir : args) {
            StringBuilder out = new StringBuilder("{\"dir\":").append(quote(dir));
            try {
                File legacy = new File(dir, "flink-conf.yaml");
                Configuration config;
                Map<String, String> entries;
                if (legacy.isFile()) {
                    entries = new TreeMap<>(ConfigurationFileMigrationUtils.loadLegacyYAMLResource(legacy));
                    config = Configuration.fromMap(entries);
                } else {
                    config = GlobalConfiguration.loadConfiguration(dir);
                    entries = new TreeMap<>(config.toMap());
                }
                out.append(",\"entries\":{");
                boolean first = true;
                for (Map.Entry<String, String> e : entries.entrySet()) {
                    if (!first) {
                        out.append(',');
                    }
                    first = false;
                    out.append(quote(e.getKey())).append(':').append(quote(e.getValue()));
                }
                out.append('}');
                if (config.contains(ApplicationConfiguration.APPLICATION_ARGS)) {
                    List<String> programArgs = config.get(ApplicationConfiguration.APPLICATION_ARGS);
                    out.append(",\"args\":[");
                    for (int i = 0; i < programArgs.size(); i++) {
                        if (i > 0) {
                            out.append(',');
                        }
                        out.append(quote(programArgs.get(i)));
                    }
                    out.append(']');
                }
            } catch (Throwable t) {
                out.append(",\"error\":").append(quote(String.valueOf(t)));
            }
            System.out.println(out.append('}'));
        }
    }

    private static String quote(String s) {
        StringBuilder b = new StringBuilder("\"");
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '"' || c == '\\') {
                b.append('\\').append(c);
            } else if (c < 0x20 || (c >= 0x7f && c <= 0x9f) || c == 0x2028 || c == 0x2029) {
                b.append(String.format("\\u%04x", (int) c));
            } else {
                b.append(c);
            }
        }
        return b.append('"').toString();
    }
}
