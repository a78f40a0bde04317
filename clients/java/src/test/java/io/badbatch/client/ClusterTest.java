package io.badbatch.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.badbatch.client.json.Json;
import java.io.IOException;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The client against a real 3-node cluster: appends and cursor writes sent to a follower follow
 * its 307 to the leader with the token (the redirect names the leader), and after the leader is
 * killed, appends through a survivor ride out no_leader and land once. Needs BADBATCH_BIN (ci.sh
 * sets it); skipped without it.
 */
class ClusterTest {
    private static final String TOKEN = "cluster-test-admin-token-0001";
    private final List<Process> nodes = new ArrayList<>();
    private final List<String> urls = new ArrayList<>();
    private Path dir;

    @AfterEach
    void stop() throws Exception {
        for (Process p : nodes) {
            p.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
        }
        if (dir != null) {
            deleteTree(dir);
        }
    }

    static void deleteTree(Path root) throws IOException {
        try (java.util.stream.Stream<Path> s = Files.walk(root)) {
            s.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        }
    }

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> status(String url) throws Exception {
        HttpClient h = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(1)).build();
        HttpResponse<String> r = h.send(HttpRequest.newBuilder(URI.create(url + "/v1/cluster"))
                .header("Authorization", "Bearer " + TOKEN).timeout(Duration.ofSeconds(2)).build(),
                HttpResponse.BodyHandlers.ofString());
        return r.statusCode() == 200 ? (Map<String, Object>) Json.parse(r.body()) : Map.of();
    }

    @Test
    void followerRedirectsAndLeaderLoss() throws Exception {
        String bin = System.getenv("BADBATCH_BIN");
        org.junit.jupiter.api.Assumptions.assumeTrue(bin != null && !bin.isEmpty(), "BADBATCH_BIN not set");
        dir = Files.createTempDirectory("badbatch-java-cluster");
        Files.writeString(dir.resolve("cluster.secret"), "java-client-cluster-test-secret-0123456789\n");
        Files.writeString(dir.resolve("tokens.txt"), TOKEN + " admin\n");
        int[] http = new int[3];
        int[] raft = new int[3];
        StringBuilder peers = new StringBuilder();
        for (int i = 0; i < 3; i++) {
            http[i] = freePort();
            raft[i] = freePort();
            peers.append(i == 0 ? "" : ",").append(i + 1).append("=127.0.0.1:").append(raft[i]);
        }
        for (int i = 0; i < 3; i++) {
            List<String> cmd = List.of(bin, "serve", "--data-dir", dir.resolve("n" + (i + 1)).toString(), "--addr",
                    "127.0.0.1:" + http[i], "--node-id", Integer.toString(i + 1), "--cluster-addr", "127.0.0.1:" + raft[i],
                    "--peers", peers.toString(), "--cluster-secret-file", dir.resolve("cluster.secret").toString(),
                    "--tokens-file", dir.resolve("tokens.txt").toString());
            nodes.add(new ProcessBuilder(cmd).redirectErrorStream(true)
                    .redirectOutput(dir.resolve("n" + (i + 1) + ".log").toFile()).start());
            urls.add("http://127.0.0.1:" + http[i]);
        }
        // Wait for a leader that every node knows.
        int leader = -1;
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (leader < 0 && System.nanoTime() < deadline) {
            Thread.sleep(200);
            int agreed = -1;
            boolean all = true;
            for (String u : urls) {
                Map<String, Object> st;
                try {
                    st = status(u);
                } catch (IOException e) {
                    st = Map.of();
                }
                Object id = st.get("leader_id");
                if (!(id instanceof Number) || ((Number) id).intValue() == 0) {
                    all = false;
                    break;
                }
                if (agreed >= 0 && agreed != ((Number) id).intValue()) {
                    all = false;
                }
                agreed = ((Number) id).intValue();
            }
            if (all) {
                leader = agreed - 1;
            }
        }
        assertTrue(leader >= 0, "no leader in 60 s");
        int follower = (leader + 1) % 3;

        ClientOptions opts = ClientOptions.builder().token(TOKEN).maxRetries(30).maxBackoff(Duration.ofSeconds(1)).build();
        BadBatchClient viaFollower = BadBatchClient.create(urls.get(follower), opts);
        AppendResult r = viaFollower.appendBatch("orders", List.of(Record.json("{\"n\":1}"), Record.text("two")),
                AppendOptions.expectingLastOffset(-1));
        assertEquals(0, r.firstOffset());
        assertEquals(1, r.lastOffset());
        viaFollower.setCursor("orders", "billing", 1);
        assertEquals(1, viaFollower.cursor("orders", "billing"));
        Page p = viaFollower.read("orders", Position.earliest(), 10);
        assertEquals(2, p.records().size());
        assertEquals("{\"n\":1}", p.records().get(0).valueAsString());

        // Kill the leader: appends through a survivor wait out no_leader (or a broken redirect) and land once.
        nodes.get(leader).destroyForcibly().waitFor(10, TimeUnit.SECONDS);
        AppendResult after = viaFollower.append("orders", Record.text("three"), AppendOptions.builder()
                .timeout(Duration.ofSeconds(60)).build());
        assertEquals(2, after.firstOffset());
        Page all = viaFollower.read("orders", Position.earliest(), 10);
        assertEquals(3, all.records().size(), "one copy of each record: " + all.records());
    }
}
