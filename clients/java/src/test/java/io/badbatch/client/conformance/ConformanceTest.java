package io.badbatch.client.conformance;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.badbatch.client.AppendOptions;
import io.badbatch.client.AppendResult;
import io.badbatch.client.BadBatchClient;
import io.badbatch.client.BadBatchException;
import io.badbatch.client.ClientOptions;
import io.badbatch.client.ErrorKind;
import io.badbatch.client.GlobalPage;
import io.badbatch.client.OffsetMismatchException;
import io.badbatch.client.Page;
import io.badbatch.client.Position;
import io.badbatch.client.Record;
import io.badbatch.client.StoredRecord;
import io.badbatch.client.StreamInfo;
import io.badbatch.client.Tail;
import io.badbatch.client.json.Json;
import java.io.File;
import java.io.IOException;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

/**
 * Runs every case of clients/conformance/cases (format: clients/conformance/README.md) through the
 * client's public API against real servers, one dynamic test per case. The server binary is
 * {@code BADBATCH_BIN}, or built once with {@code go build}.
 */
class ConformanceTest {
    private static final Path ROOT = repoRoot();
    private static final Path CONF = conformanceDir();
    private static final Map<String, Server> SERVERS = new HashMap<>();
    private static Map<String, Object> profiles;
    private static Map<String, Object> tokens;
    private static Path binary;

    @TestFactory
    Stream<DynamicTest> cases() throws IOException {
        profiles = obj(Json.parse(Files.readAllBytes(CONF.resolve("servers.json"))));
        tokens = obj(Json.parse(Files.readAllBytes(CONF.resolve("tokens.json"))));
        List<Path> files;
        String dir = System.getenv("BADBATCH_CONFORMANCE_CASES");
        Path casesDir = dir != null && !dir.isEmpty() ? Paths.get(dir) : CONF.resolve("cases");
        try (Stream<Path> s = Files.list(casesDir)) {
            String only = System.getenv("CONFORMANCE_CASE");
            files = s.filter(p -> p.toString().endsWith(".json"))
                    .filter(p -> only == null || only.isEmpty() || p.getFileName().toString().equals(only + ".json"))
                    .sorted().collect(Collectors.toList());
        }
        assertTrue(!files.isEmpty(), "no conformance cases under " + CONF);
        return files.stream().map(f -> {
            String name = f.getFileName().toString().replaceAll("\\.json$", "");
            return DynamicTest.dynamicTest(name, f.toUri(), () -> new CaseRun(f).run());
        });
    }

    @AfterAll
    static void stopServers() {
        for (Server s : SERVERS.values()) {
            s.stop();
            try (Stream<Path> files = Files.walk(s.dataDir)) {
                files.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
            } catch (IOException e) {
                // leave it
            }
        }
        SERVERS.clear();
    }

    // ---------------------------------------------------------------- servers

    private static Path repoRoot() {
        String p = System.getProperty("badbatch.root", System.getenv("BADBATCH_ROOT"));
        if (p != null) {
            return Paths.get(p).toAbsolutePath();
        }
        Path d = Paths.get("").toAbsolutePath();
        while (d != null) {
            if (Files.exists(d.resolve("clients/conformance/servers.json")) && Files.exists(d.resolve("go.mod"))) {
                return d;
            }
            d = d.getParent();
        }
        throw new IllegalStateException("repository root not found: set -Dbadbatch.root or BADBATCH_ROOT");
    }

    /** clients/conformance, or BADBATCH_CONFORMANCE_DIR (servers.json, tokens.*, cases/). */
    private static Path conformanceDir() {
        String d = System.getenv("BADBATCH_CONFORMANCE_DIR");
        return d != null && !d.isEmpty() ? Paths.get(d).toAbsolutePath() : ROOT.resolve("clients/conformance");
    }

    private static synchronized Path binary() throws IOException, InterruptedException {
        if (binary != null) {
            return binary;
        }
        String env = System.getenv("BADBATCH_BIN");
        if (env != null && !env.isEmpty()) {
            binary = Paths.get(env);
            return binary;
        }
        Path dir = Files.createTempDirectory("badbatch-bin");
        Path out = dir.resolve("badbatch");
        Process p = new ProcessBuilder("go", "build", "-o", out.toString(), "./cmd/badbatch").directory(ROOT.toFile())
                .inheritIO().start();
        if (p.waitFor() != 0) {
            throw new IllegalStateException("go build ./cmd/badbatch failed");
        }
        binary = out;
        return binary;
    }

    private static synchronized Server server(String profile) throws Exception {
        Server s = SERVERS.get(profile);
        if (s == null) {
            Object p = profiles.get(profile);
            if (p == null) {
                throw new IllegalStateException("unknown profile " + profile + " (servers.json)");
            }
            s = new Server(profile, obj(p));
            s.start();
            SERVERS.put(profile, s);
        }
        return s;
    }

    static final class Server {
        final String profile;
        final boolean auth;
        final List<String> args = new ArrayList<>();
        final Path dataDir;
        final int port;
        Process process;
        final Map<String, BadBatchClient> clients = new HashMap<>();
        final Map<String, Object> clientOptions;

        Server(String profile, Map<String, Object> spec) throws IOException {
            this.profile = profile;
            this.auth = Boolean.TRUE.equals(spec.get("tokens"));
            this.clientOptions = spec.containsKey("client_options") ? obj(spec.get("client_options")) : Map.of();
            Object a = spec.get("args");
            if (a != null) {
                for (Object o : list(a)) {
                    args.add(String.valueOf(o));
                }
            }
            this.dataDir = Files.createTempDirectory("badbatch-conf-" + profile);
            try (ServerSocket ss = new ServerSocket(0)) {
                this.port = ss.getLocalPort();
            }
        }

        String url() {
            return "http://127.0.0.1:" + port;
        }

        void start() throws Exception {
            List<String> cmd = new ArrayList<>(List.of(binary().toString(), "serve", "--addr", "127.0.0.1:" + port,
                    "--data-dir", dataDir.resolve("data").toString()));
            if (auth) {
                cmd.add("--tokens-file");
                cmd.add(CONF.resolve("tokens.txt").toString());
            }
            cmd.addAll(args);
            File log = dataDir.resolve("server.log").toFile();
            process = new ProcessBuilder(cmd).redirectErrorStream(true)
                    .redirectOutput(ProcessBuilder.Redirect.appendTo(log)).start();
            HttpClient h = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(1)).build();
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (System.nanoTime() < deadline) {
                if (!process.isAlive()) {
                    throw new IllegalStateException("server " + profile + " exited: " + Files.readString(log.toPath()));
                }
                try {
                    HttpResponse<Void> r = h.send(HttpRequest.newBuilder(URI.create(url() + "/readyz")).build(),
                            HttpResponse.BodyHandlers.discarding());
                    if (r.statusCode() == 200) {
                        return;
                    }
                } catch (IOException e) {
                    // not yet
                }
                Thread.sleep(50);
            }
            throw new IllegalStateException("server " + profile + " not ready in 30 s");
        }

        void stop() {
            if (process != null) {
                process.destroy(); // SIGTERM
                try {
                    if (!process.waitFor(30, TimeUnit.SECONDS)) {
                        process.destroyForcibly().waitFor();
                    }
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
                process = null;
            }
        }

        void restart() throws Exception {
            stop();
            start();
        }

        /** A client per token name (null: admin where the profile has tokens); {@code noRetries} for expected transient errors. */
        synchronized BadBatchClient client(String tokenName, boolean noRetries) {
            String name = tokenName == null ? (auth ? "admin" : "") : tokenName;
            String cacheKey = name + (noRetries ? "/noretry" : "");
            return clients.computeIfAbsent(cacheKey, k -> {
                ClientOptions.Builder b = ClientOptions.builder();
                applyOptions(b, clientOptions);
                if (!name.isEmpty()) {
                    Object t = tokens.get(name);
                    if (t == null) {
                        throw new IllegalStateException("unknown token " + name + " (tokens.json)");
                    }
                    b.token((String) t);
                }
                if (noRetries) {
                    b.maxRetries(0);
                }
                return BadBatchClient.create(url(), b.build());
            });
        }
    }

    // ---------------------------------------------------------------- one case

    final class CaseRun {
        final Path file;
        final Map<String, Object> spec;
        final String runId = String.format("%08x", ThreadLocalRandom.current().nextInt());
        final Map<String, Object> saved = new HashMap<>();
        final Map<String, Tail> tails = new HashMap<>();
        final Map<String, BadBatchException> tailErrors = new HashMap<>(); // met at tail_open, for the next tail_next
        final Set<String> failedTails = new java.util.HashSet<>(); // opened with an error: tail_close is a no-op
        Server server;

        CaseRun(Path file) throws IOException {
            this.file = file;
            this.spec = obj(Json.parse(Files.readAllBytes(file)));
        }

        void run() throws Exception {
            String profile = spec.containsKey("profile") ? (String) spec.get("profile") : "default";
            server = server(profile);
            List<Object> steps = list(spec.get("steps"));
            try {
                for (int i = 0; i < steps.size(); i++) {
                    Map<String, Object> step = obj(steps.get(i));
                    try {
                        step(step);
                    } catch (AssertionError e) {
                        throw new AssertionError("step " + i + " (" + step.get("op") + "): " + brief(e.getMessage()), e);
                    }
                }
            } finally {
                for (Tail t : tails.values()) {
                    t.close();
                }
            }
        }

        String stream(Map<String, Object> step) {
            String s = (String) step.get("stream");
            if (s == null) {
                throw new AssertionError("step without a stream");
            }
            return Boolean.TRUE.equals(step.get("raw_stream")) ? s : s + "-" + runId;
        }

        String suffixed(Object name) {
            return name + "-" + runId;
        }

        void step(Map<String, Object> rawStep) throws Exception {
            @SuppressWarnings("unchecked")
            Map<String, Object> step = (Map<String, Object>) resolve(rawStep);
            String op = (String) step.get("op");
            Map<String, Object> expect = step.containsKey("expect") ? obj(step.get("expect")) : Map.of();
            for (String k : expect.keySet()) {
                if (!Set.of("error", "status", "current_last_offset", "result", "records", "streams_include").contains(k)) {
                    throw new AssertionError("the runner does not know the expectation \"" + k + "\"");
                }
            }
            String expectedError = (String) expect.get("error");
            ErrorKind expectedKind = expectedError == null ? null : ErrorKind.fromCode(expectedError);
            // A transient kind (rate_limited, unavailable, no_leader) the client would retry away:
            // the step is made without retries so that the kind shows.
            boolean noRetries = expectedKind != null && (expectedKind == ErrorKind.RATE_LIMITED
                    || expectedKind == ErrorKind.UNAVAILABLE || expectedKind == ErrorKind.NO_LEADER);
            BadBatchClient c = server.client((String) step.get("token"), noRetries);
            Object result;
            List<StoredRecord> records = null;
            try {
                switch (op) {
                    case "append": {
                        List<Object> in = list(step.get("records"));
                        List<Record> recs = new ArrayList<>();
                        for (Object o : in) {
                            recs.add(record(obj(o)));
                        }
                        AppendOptions.Builder ob = AppendOptions.builder();
                        if (step.get("expected_last_offset") != null) {
                            ob.expectedLastOffset(num(step.get("expected_last_offset")));
                        }
                        if (step.get("idempotency_key") != null) {
                            ob.idempotencyKey((String) step.get("idempotency_key"));
                        }
                        if (step.get("stream_seq") != null) {
                            ob.streamSeq((String) step.get("stream_seq"));
                        }
                        AppendOptions opts = ob.build();
                        AppendResult r = recs.size() == 1 ? c.append(stream(step), recs.get(0), opts)
                                : c.appendBatch(stream(step), recs, opts);
                        result = appendResultMap(r);
                        break;
                    }
                    case "read": {
                        Page p = step.containsKey("limit")
                                ? c.read(stream(step), position(step.get("from")), (int) num(step.get("limit")))
                                : c.read(stream(step), position(step.get("from")));
                        records = p.records();
                        Map<String, Object> m = new LinkedHashMap<>();
                        m.put("next_offset", p.nextOffset());
                        m.put("records", recordMaps(records));
                        result = m;
                        break;
                    }
                    case "read_all": {
                        String s = stream(step);
                        int limit = step.containsKey("limit") ? (int) num(step.get("limit")) : 0;
                        Position pos = position(step.get("from"));
                        List<StoredRecord> all = new ArrayList<>();
                        long next = -1;
                        for (int pages = 0; ; pages++) {
                            if (pages > 100000) {
                                throw new AssertionError("read_all: too many pages");
                            }
                            Page p = c.read(s, pos, limit);
                            next = p.nextOffset();
                            if (p.records().isEmpty()) {
                                break;
                            }
                            all.addAll(p.records());
                            pos = Position.offset(p.nextOffset());
                        }
                        records = all;
                        Map<String, Object> m = new LinkedHashMap<>();
                        m.put("next_offset", next);
                        m.put("records", recordMaps(all));
                        result = m;
                        break;
                    }
                    case "read_global": {
                        long from = num(step.get("from_seq"));
                        GlobalPage p = step.containsKey("limit") ? c.readGlobal(from, (int) num(step.get("limit")))
                                : c.readGlobal(from);
                        records = p.records();
                        Map<String, Object> m = new LinkedHashMap<>();
                        m.put("next_seq", p.nextSeq());
                        m.put("records", recordMaps(records));
                        result = m;
                        break;
                    }
                    case "streams": {
                        List<StreamInfo> l = c.streams();
                        List<Object> out = new ArrayList<>();
                        for (StreamInfo i : l) {
                            out.add(streamInfoMap(i));
                        }
                        result = out;
                        break;
                    }
                    case "stream_info":
                        result = streamInfoMap(c.streamInfo(stream(step)));
                        break;
                    case "set_cursor":
                        c.setCursor(stream(step), (String) step.get("name"), num(step.get("offset")));
                        result = Map.of();
                        break;
                    case "cursor": {
                        long off = c.cursor(stream(step), (String) step.get("name"));
                        result = new LinkedHashMap<>(Map.of("offset", off));
                        break;
                    }
                    case "tail_open": {
                        String name = (String) step.get("tail");
                        if (tails.containsKey(name) || failedTails.contains(name)) {
                            throw new AssertionError("tail " + name + " is already open");
                        }
                        try {
                            tails.put(name, c.tail(stream(step), position(step.get("from"))));
                        } catch (BadBatchException e) {
                            if (expectedError != null) {
                                throw e;
                            }
                            tailErrors.put(name, e); // the outcome of the next tail_next (README)
                            failedTails.add(name);
                        }
                        result = Map.of();
                        break;
                    }
                    case "tail_next": {
                        BadBatchException opened = tailErrors.remove((String) step.get("tail"));
                        if (opened != null) {
                            throw opened;
                        }
                        Tail t = tail(step);
                        long count = num(step.get("count"));
                        long timeoutMs = step.containsKey("timeout_ms") ? num(step.get("timeout_ms")) : 10000;
                        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMs);
                        List<StoredRecord> got = new ArrayList<>();
                        while (got.size() < count) {
                            long left = deadline - System.nanoTime();
                            StoredRecord r = left > 0 ? t.poll(Duration.ofNanos(left)) : null;
                            if (r == null) {
                                throw new AssertionError("tail_next: " + got.size() + " of " + count
                                        + " records within " + timeoutMs + " ms: " + got);
                            }
                            got.add(r);
                        }
                        records = got;
                        result = recordMaps(got);
                        break;
                    }
                    case "tail_close": {
                        tailErrors.remove((String) step.get("tail"));
                        if (!failedTails.remove((String) step.get("tail"))) {
                            Tail t = tail(step);
                            t.close();
                            tails.remove((String) step.get("tail"));
                        }
                        result = Map.of();
                        break;
                    }
                    case "restart":
                        server.restart();
                        result = Map.of();
                        break;
                    default:
                        throw new AssertionError("the runner does not know op \"" + op + "\"");
                }
            } catch (BadBatchException e) {
                if (expectedError == null) {
                    throw new AssertionError("unexpected error " + e.code() + " (" + e.status() + "): " + e.getMessage(), e);
                }
                assertEquals(expectedError, e.code(), "error kind (" + e.getMessage() + ")");
                assertEquals(expectedError, e.kind().code(), "ErrorKind");
                if (expect.containsKey("status")) {
                    assertEquals(num(expect.get("status")), e.status(), "status");
                }
                if (expect.containsKey("current_last_offset")) {
                    assertTrue(e instanceof OffsetMismatchException, "want OffsetMismatchException, got " + e.getClass());
                    assertEquals(num(expect.get("current_last_offset")),
                            ((OffsetMismatchException) e).currentLastOffset().orElseThrow(), "current_last_offset");
                }
                return;
            }
            if (expectedError != null) {
                fail("want error " + expectedError + ", the call succeeded: " + brief(Json.write(result)));
            }
            if (step.get("id") != null) {
                saved.put((String) step.get("id"), result);
            }
            if (expect.containsKey("result")) {
                Map<String, Object> want = obj(expect.get("result"));
                if (!(result instanceof Map)) {
                    fail("result expected, but " + op + " answers a " + result.getClass().getSimpleName());
                }
                Map<String, Object> got = obj(result);
                for (Map.Entry<String, Object> e : want.entrySet()) {
                    Object w = e.getValue();
                    if (e.getKey().equals("stream") && !Boolean.TRUE.equals(step.get("raw_stream"))) {
                        w = suffixed(w);
                    }
                    if (!got.containsKey(e.getKey())) {
                        fail("result has no field " + e.getKey() + ": " + got);
                    }
                    if (!valueEquals(w, got.get(e.getKey()))) {
                        fail("result." + e.getKey() + ": want " + Json.write(w) + ", got " + Json.write(got.get(e.getKey())));
                    }
                }
            }
            if (expect.containsKey("records")) {
                if (records == null) {
                    fail("records expected, but " + op + " answers none");
                }
                checkRecords(list(expect.get("records")), records);
            }
            if (expect.containsKey("streams_include")) {
                Set<String> names = new java.util.HashSet<>();
                for (Object o : list(result)) {
                    names.add((String) obj(o).get("stream"));
                }
                for (Object n : list(expect.get("streams_include"))) {
                    String want = suffixed(n);
                    assertTrue(names.contains(want), "streams: want " + want + " in " + new TreeMap<>(Map.of("streams", names)));
                }
            }
        }

        Tail tail(Map<String, Object> step) {
            Tail t = tails.get((String) step.get("tail"));
            if (t == null) {
                throw new AssertionError("no open tail " + step.get("tail"));
            }
            return t;
        }

        void checkRecords(List<Object> want, List<StoredRecord> got) {
            if (want.size() != got.size()) {
                fail("want " + want.size() + " records, got " + got.size() + ": " + got);
            }
            for (int i = 0; i < want.size(); i++) {
                Map<String, Object> w = obj(want.get(i));
                StoredRecord g = got.get(i);
                String where = "record " + i + " (" + g + "): ";
                for (Map.Entry<String, Object> e : w.entrySet()) {
                    Object v = e.getValue();
                    switch (e.getKey()) {
                        case "offset":
                            assertEquals(num(v), g.offset(), where + "offset");
                            break;
                        case "seq":
                            assertEquals(num(v), g.seq(), where + "seq");
                            break;
                        case "stream":
                            assertEquals(suffixed(v), g.stream(), where + "stream");
                            break;
                        case "key":
                            assertEquals(v, g.key(), where + "key");
                            break;
                        case "headers":
                            assertEquals(v == null ? Map.of() : obj(v), g.headers(), where + "headers");
                            break;
                        case "timestamp":
                            assertEquals(Instant.parse((String) v), g.timestamp(), where + "timestamp");
                            break;
                        case "value":
                            assertTrue(g.isJson(), where + "want a JSON value, got bytes");
                            Object gv = Json.parse(g.valueAsString());
                            assertTrue(jsonEquals(v, gv), where + "value: want " + Json.write(v) + ", got " + g.valueAsString());
                            break;
                        case "value_base64":
                            assertTrue(!g.isJson(), where + "want a binary value, got JSON");
                            assertArrayEquals(Base64.getDecoder().decode((String) v), g.value(), where + "value_base64");
                            break;
                        case "value_fill":
                            assertTrue(!g.isJson(), where + "want a binary value, got JSON");
                            assertArrayEquals(fill(obj(v)), g.value(), where + "value_fill");
                            break;
                        default:
                            fail("the runner does not know the expected record field \"" + e.getKey() + "\"");
                    }
                }
            }
        }

        // ------------------------------------------------------------ references

        Object resolve(Object v) {
            if (v instanceof Map) {
                Map<String, Object> m = obj(v);
                if (m.containsKey("ref") && m.get("ref") instanceof String && m.size() <= 2
                        && (m.size() == 1 || m.containsKey("plus"))) {
                    Object base = lookup((String) m.get("ref"));
                    if (m.containsKey("plus")) {
                        return toBig(base).add(toBig(m.get("plus")));
                    }
                    return base;
                }
                Map<String, Object> out = new LinkedHashMap<>();
                for (Map.Entry<String, Object> e : m.entrySet()) {
                    // A record's JSON value is data, never a reference.
                    out.put(e.getKey(), e.getKey().equals("value") ? e.getValue() : resolve(e.getValue()));
                }
                return out;
            }
            if (v instanceof List) {
                List<Object> out = new ArrayList<>();
                for (Object o : list(v)) {
                    out.add(resolve(o));
                }
                return out;
            }
            return v;
        }

        Object lookup(String ref) {
            String[] parts = ref.split("\\.");
            if (!saved.containsKey(parts[0])) {
                throw new AssertionError("reference " + ref + ": no step saved under " + parts[0]);
            }
            Object cur = saved.get(parts[0]);
            for (int i = 1; i < parts.length; i++) {
                if (cur instanceof Map && obj(cur).containsKey(parts[i])) {
                    cur = obj(cur).get(parts[i]);
                } else if (cur instanceof List && parts[i].matches("\\d+")) {
                    cur = list(cur).get(Integer.parseInt(parts[i]));
                } else {
                    throw new AssertionError("reference " + ref + ": no field " + parts[i] + " in " + Json.write(cur));
                }
            }
            return cur;
        }
    }

    // ---------------------------------------------------------------- conversions

    /** A profile's client_options, under their vocabulary names; durations in ms or as "250ms", "5s". */
    static void applyOptions(ClientOptions.Builder b, Map<String, Object> o) {
        for (Map.Entry<String, Object> e : o.entrySet()) {
            Object v = e.getValue();
            switch (e.getKey()) {
                case "max_retries": b.maxRetries((int) num(v)); break;
                case "retry_backoff": b.retryBackoff(duration(v)); break;
                case "max_backoff": b.maxBackoff(duration(v)); break;
                case "max_retry_after": b.maxRetryAfter(duration(v)); break;
                case "request_timeout": b.requestTimeout(duration(v)); break;
                case "connect_timeout": b.connectTimeout(duration(v)); break;
                case "tail_idle_timeout": b.tailIdleTimeout(duration(v)); break;
                case "generate_idempotency_keys": b.generateIdempotencyKeys((Boolean) v); break;
                case "user_agent": b.userAgent((String) v); break;
                case "token": b.token((String) v); break;
                default: throw new AssertionError("the runner does not know the client option \"" + e.getKey() + "\"");
            }
        }
    }

    static Duration duration(Object v) {
        if (v instanceof Number) {
            return Duration.ofMillis(((Number) v).longValue());
        }
        String s = String.valueOf(v).trim();
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("(\\d+(?:\\.\\d+)?)(ms|s|m)").matcher(s);
        if (!m.matches()) {
            throw new AssertionError("the runner does not know the duration " + s);
        }
        double n = Double.parseDouble(m.group(1));
        double ms = m.group(2).equals("ms") ? n : m.group(2).equals("s") ? n * 1000 : n * 60000;
        return Duration.ofNanos((long) (ms * 1e6));
    }

    static Record record(Map<String, Object> r) {
        Record rec;
        int kinds = (r.containsKey("value") ? 1 : 0) + (r.containsKey("value_base64") ? 1 : 0)
                + (r.containsKey("value_fill") ? 1 : 0);
        if (kinds > 1) {
            throw new AssertionError("a record with more than one of value, value_base64, value_fill");
        }
        if (r.containsKey("value")) {
            rec = Record.json(Json.write(r.get("value")));
        } else if (r.containsKey("value_base64")) {
            rec = Record.bytes(Base64.getDecoder().decode((String) r.get("value_base64")));
        } else if (r.containsKey("value_fill")) {
            rec = Record.bytes(fill(obj(r.get("value_fill"))));
        } else {
            rec = Record.empty();
        }
        for (String k : r.keySet()) {
            if (!Set.of("key", "value", "value_base64", "value_fill", "headers", "timestamp").contains(k)) {
                throw new AssertionError("the runner does not know the record field \"" + k + "\"");
            }
        }
        if (r.get("key") != null) {
            rec = rec.withKey((String) r.get("key"));
        }
        if (r.get("headers") != null) {
            Map<String, String> h = new LinkedHashMap<>();
            obj(r.get("headers")).forEach((k, v) -> h.put(k, (String) v));
            rec = rec.withHeaders(h);
        }
        if (r.get("timestamp") != null) {
            rec = rec.withTimestamp(Instant.parse((String) r.get("timestamp")));
        }
        return rec;
    }

    static byte[] fill(Map<String, Object> f) {
        byte[] text = ((String) f.get("text")).getBytes(StandardCharsets.UTF_8);
        int len = (int) num(f.get("length"));
        byte[] out = new byte[len];
        if (text.length == 0) {
            return out;
        }
        for (int i = 0; i < len; i++) {
            out[i] = text[i % text.length];
        }
        return out;
    }

    static Position position(Object from) {
        if (from == null || "earliest".equals(from)) {
            return Position.earliest();
        }
        if ("latest".equals(from)) {
            return Position.latest();
        }
        if (from instanceof Number) {
            return Position.offset(((Number) from).longValue());
        }
        if (from instanceof Map && obj(from).containsKey("time")) {
            return Position.time(Instant.parse((String) obj(from).get("time")));
        }
        throw new AssertionError("the runner does not know the position " + Json.write(from));
    }

    static Map<String, Object> appendResultMap(AppendResult r) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("stream", r.stream());
        m.put("first_offset", r.firstOffset());
        m.put("last_offset", r.lastOffset());
        m.put("count", (long) r.count());
        m.put("first_seq", r.firstSeq());
        m.put("last_seq", r.lastSeq());
        m.put("durability", r.durability());
        m.put("replayed", r.replayed());
        return m;
    }

    static Map<String, Object> streamInfoMap(StreamInfo i) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("stream", i.stream());
        m.put("first_offset", i.firstOffset());
        m.put("next_offset", i.nextOffset());
        m.put("records", i.records());
        m.put("bytes", i.bytes());
        m.put("last_timestamp", i.lastTimestamp().map(Instant::toString).orElse(null));
        return m;
    }

    static List<Object> recordMaps(List<StoredRecord> recs) {
        List<Object> out = new ArrayList<>();
        for (StoredRecord r : recs) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("stream", r.stream());
            m.put("offset", r.offset());
            m.put("seq", r.seq());
            m.put("timestamp", r.timestamp() == null ? null : r.timestamp().toString());
            m.put("key", r.key());
            m.put("headers", new LinkedHashMap<String, Object>(r.headers()));
            if (r.isJson()) {
                m.put("value", Json.parse(r.valueAsString()));
            } else {
                m.put("value_base64", Base64.getEncoder().encodeToString(r.value()));
            }
            out.add(m);
        }
        return out;
    }

    // ---------------------------------------------------------------- JSON helpers

    @SuppressWarnings("unchecked")
    static Map<String, Object> obj(Object o) {
        if (!(o instanceof Map)) {
            throw new AssertionError("want a JSON object, got " + (o == null ? "null" : Json.write(o)));
        }
        return (Map<String, Object>) o;
    }

    @SuppressWarnings("unchecked")
    static List<Object> list(Object o) {
        if (!(o instanceof List)) {
            throw new AssertionError("want a JSON array, got " + (o == null ? "null" : Json.write(o)));
        }
        return (List<Object>) o;
    }

    static long num(Object o) {
        if (!(o instanceof Number)) {
            throw new AssertionError("want a number, got " + (o == null ? "null" : Json.write(o)));
        }
        return ((Number) o).longValue();
    }

    static BigDecimal toBig(Object o) {
        if (o instanceof BigDecimal) {
            return (BigDecimal) o;
        }
        if (o instanceof BigInteger) {
            return new BigDecimal((BigInteger) o);
        }
        if (o instanceof Long || o instanceof Integer) {
            return BigDecimal.valueOf(((Number) o).longValue());
        }
        if (o instanceof Number) {
            return new BigDecimal(o.toString());
        }
        throw new AssertionError("want a number, got " + (o == null ? "null" : Json.write(o)));
    }

    /** JSON equality; strings that both parse as instants compare as instants. */
    static boolean valueEquals(Object want, Object got) {
        if (want instanceof String && got instanceof String && !want.equals(got)) {
            try {
                return Instant.parse((String) want).equals(Instant.parse((String) got));
            } catch (RuntimeException e) {
                return false;
            }
        }
        return jsonEquals(want, got);
    }

    static boolean jsonEquals(Object a, Object b) {
        if (a == null || b == null) {
            return a == b;
        }
        if (a instanceof Number && b instanceof Number) {
            return toBig(a).compareTo(toBig(b)) == 0;
        }
        if (a instanceof Map && b instanceof Map) {
            Map<String, Object> ma = obj(a);
            Map<String, Object> mb = obj(b);
            if (!ma.keySet().equals(mb.keySet())) {
                return false;
            }
            for (String k : ma.keySet()) {
                if (!jsonEquals(ma.get(k), mb.get(k))) {
                    return false;
                }
            }
            return true;
        }
        if (a instanceof List && b instanceof List) {
            List<Object> la = list(a);
            List<Object> lb = list(b);
            if (la.size() != lb.size()) {
                return false;
            }
            for (int i = 0; i < la.size(); i++) {
                if (!jsonEquals(la.get(i), lb.get(i))) {
                    return false;
                }
            }
            return true;
        }
        return a.equals(b);
    }

    static String brief(String s) {
        return s == null || s.length() <= 600 ? s : s.substring(0, 600) + "... (" + s.length() + " chars)";
    }

    static void assertArrayEquals(byte[] want, byte[] got, String msg) {
        if (!Arrays.equals(want, got)) {
            fail(msg + ": want " + want.length + " bytes " + Base64.getEncoder().encodeToString(Arrays.copyOf(want, Math.min(want.length, 48)))
                    + ", got " + got.length + " bytes " + Base64.getEncoder().encodeToString(Arrays.copyOf(got, Math.min(got.length, 48))));
        }
    }
}
