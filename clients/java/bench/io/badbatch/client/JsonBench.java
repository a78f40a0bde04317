package io.badbatch.client;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The evidence for docs/decisions/0014-java-client-json.md: the client's hand-written codec
 * against Jackson (Debian's libjackson2-databind-java 2.14) on the client's two hot paths,
 * decoding a page of 100 records and encoding a batch of 100 records (100-byte binary values, as
 * in clients/BENCH.md), plus a page of 100 JSON-valued records. Each variant produces the same
 * StoredRecord objects or the same bytes.
 *
 * <pre>
 * javac -d /tmp/jb -cp /usr/share/java/jackson-core.jar:/usr/share/java/jackson-databind.jar:/usr/share/java/jackson-annotations.jar \
 *   $(find clients/java/src/main/java -name '*.java') clients/java/bench/io/badbatch/client/JsonBench.java
 * java -cp /tmp/jb:/usr/share/java/jackson-core.jar:/usr/share/java/jackson-databind.jar:/usr/share/java/jackson-annotations.jar \
 *   io.badbatch.client.JsonBench
 * </pre>
 */
public final class JsonBench {
    static final JsonFactory FACTORY = new JsonFactory();
    static final ObjectMapper MAPPER = new ObjectMapper();
    static volatile Object sink;

    public static void main(String[] args) throws Exception {
        byte[] binPage = page(false);
        byte[] jsonPage = page(true);
        List<Record> batch = new ArrayList<>();
        byte[] v = new byte[100];
        for (int i = 0; i < 100; i++) {
            v[i] = (byte) ('a' + i % 26);
        }
        for (int i = 0; i < 100; i++) {
            batch.add(Record.bytes(v));
        }
        // Same results from every variant.
        check(Wire.decodePage(binPage, "s"), jacksonStreamingPage(binPage, "s"));
        check(Wire.decodePage(jsonPage, "s"), jacksonTreePage(jsonPage, "s"));
        check(Wire.decodePage(jsonPage, "s"), jacksonStreamingPage(jsonPage, "s"));
        if (!new String(Wire.encodeRecords(batch), StandardCharsets.UTF_8)
                .equals(new String(jacksonEncode(batch), StandardCharsets.UTF_8))) {
            throw new AssertionError("encodings differ");
        }
        int rounds = args.length > 0 ? Integer.parseInt(args[0]) : 5;
        for (int r = 0; r < rounds; r++) {
            System.out.println("round " + r);
            time("decode page, 100 binary records: hand-written", () -> sink = Wire.decodePage(binPage, "s"));
            time("decode page, 100 binary records: Jackson streaming", () -> sink = jacksonStreamingPage(binPage, "s"));
            time("decode page, 100 binary records: Jackson tree", () -> sink = jacksonTreePage(binPage, "s"));
            time("decode page, 100 JSON records: hand-written", () -> sink = Wire.decodePage(jsonPage, "s"));
            time("decode page, 100 JSON records: Jackson streaming", () -> sink = jacksonStreamingPage(jsonPage, "s"));
            time("decode page, 100 JSON records: Jackson tree", () -> sink = jacksonTreePage(jsonPage, "s"));
            time("encode batch, 100 binary records: hand-written", () -> sink = Wire.encodeRecords(batch));
            time("encode batch, 100 binary records: Jackson streaming", () -> sink = jacksonEncode(batch));
        }
    }

    interface Op {
        void run() throws Exception;
    }

    static void time(String name, Op op) throws Exception {
        for (int i = 0; i < 3000; i++) {
            op.run();
        }
        int n = 20000;
        long t0 = System.nanoTime();
        for (int i = 0; i < n; i++) {
            op.run();
        }
        double usPerOp = (System.nanoTime() - t0) / 1e3 / n;
        System.out.println(String.format(Locale.ROOT, "  %-55s %8.1f us/op %10.0f records/s", name, usPerOp, 100 / usPerOp * 1e6));
    }

    static byte[] page(boolean json) {
        StringBuilder b = new StringBuilder("{\"records\":[");
        String v64 = Base64.getEncoder().encodeToString("abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuv".getBytes(StandardCharsets.US_ASCII));
        for (int i = 0; i < 100; i++) {
            if (i > 0) {
                b.append(',');
            }
            b.append("{\"offset\":").append(1000 + i).append(",\"seq\":").append(5000 + i)
                    .append(",\"timestamp\":\"2026-11-25T21:35:0").append(i % 10).append(".123456789Z\",\"key\":\"k")
                    .append(i).append("\",\"headers\":{\"h\":\"v\"},");
            if (json) {
                b.append("\"value\":{\"id\":").append(i).append(",\"name\":\"order ").append(i)
                        .append("\",\"items\":[1,2,3],\"ok\":true}");
            } else {
                b.append("\"value_base64\":\"").append(v64).append('"');
            }
            b.append('}');
        }
        b.append("],\"next_offset\":1100}");
        return b.toString().getBytes(StandardCharsets.UTF_8);
    }

    static void check(Page a, Page b) {
        if (a.records().size() != b.records().size() || a.nextOffset() != b.nextOffset()) {
            throw new AssertionError("pages differ");
        }
        for (int i = 0; i < a.records().size(); i++) {
            StoredRecord x = a.records().get(i);
            StoredRecord y = b.records().get(i);
            if (x.offset() != y.offset() || x.seq() != y.seq() || !x.timestamp().equals(y.timestamp())
                    || !x.key().equals(y.key()) || !x.headers().equals(y.headers()) || x.isJson() != y.isJson()
                    || !java.util.Arrays.equals(x.value(), y.value())) {
                throw new AssertionError("record " + i + " differs: " + x + " / " + y);
            }
        }
    }

    /** Jackson's streaming parser: the fastest way to use it; a JSON value is copied as compact text. */
    static Page jacksonStreamingPage(byte[] body, String stream) throws Exception {
        try (JsonParser p = FACTORY.createParser(body)) {
            List<StoredRecord> recs = new ArrayList<>();
            long next = 0;
            p.nextToken();
            while (p.nextToken() == JsonToken.FIELD_NAME) {
                String f = p.getCurrentName();
                p.nextToken();
                if (f.equals("records")) {
                    while (p.nextToken() == JsonToken.START_OBJECT) {
                        long offset = 0, seq = 0;
                        Instant ts = null;
                        String key = null;
                        byte[] value = new byte[0];
                        boolean json = false;
                        Map<String, String> headers = Map.of();
                        while (p.nextToken() == JsonToken.FIELD_NAME) {
                            String n = p.getCurrentName();
                            p.nextToken();
                            switch (n) {
                                case "offset": offset = p.getLongValue(); break;
                                case "seq": seq = p.getLongValue(); break;
                                case "timestamp": ts = Wire.parseTime(p.getText()); break;
                                case "key": key = p.getText(); break;
                                case "value_base64": value = p.getBinaryValue(); break;
                                case "value": {
                                    ByteArrayOutputStream out = new ByteArrayOutputStream(64);
                                    try (JsonGenerator g = FACTORY.createGenerator(out)) {
                                        g.copyCurrentStructure(p);
                                    }
                                    value = out.toByteArray();
                                    json = true;
                                    break;
                                }
                                case "headers": {
                                    Map<String, String> h = new LinkedHashMap<>();
                                    while (p.nextToken() == JsonToken.FIELD_NAME) {
                                        String hn = p.getCurrentName();
                                        p.nextToken();
                                        h.put(hn, p.getText());
                                    }
                                    headers = h;
                                    break;
                                }
                                default: p.skipChildren();
                            }
                        }
                        recs.add(new StoredRecord(stream, offset, seq, ts, key, value, json, headers));
                    }
                } else if (f.equals("next_offset")) {
                    next = p.getLongValue();
                } else {
                    p.skipChildren();
                }
            }
            return new Page(recs, next);
        }
    }

    /** Jackson's tree model (what most callers write): readTree, then walk it. */
    static Page jacksonTreePage(byte[] body, String stream) throws Exception {
        JsonNode root = MAPPER.readTree(body);
        List<StoredRecord> recs = new ArrayList<>();
        for (JsonNode r : root.get("records")) {
            Map<String, String> h = new LinkedHashMap<>();
            JsonNode hn = r.get("headers");
            if (hn != null) {
                Iterator<Map.Entry<String, JsonNode>> it = hn.fields();
                while (it.hasNext()) {
                    Map.Entry<String, JsonNode> e = it.next();
                    h.put(e.getKey(), e.getValue().asText());
                }
            }
            byte[] value;
            boolean json = r.has("value");
            if (json) {
                value = MAPPER.writeValueAsBytes(r.get("value"));
            } else if (r.has("value_base64")) {
                value = r.get("value_base64").binaryValue();
            } else {
                value = new byte[0];
            }
            recs.add(new StoredRecord(stream, r.get("offset").asLong(), r.get("seq").asLong(),
                    Wire.parseTime(r.get("timestamp").asText()), r.has("key") ? r.get("key").asText() : null, value, json, h));
        }
        return new Page(recs, root.get("next_offset").asLong());
    }

    static byte[] jacksonEncode(List<Record> records) throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream(16 * 1024);
        try (JsonGenerator g = FACTORY.createGenerator(out)) {
            g.writeStartObject();
            g.writeArrayFieldStart("records");
            for (Record r : records) {
                g.writeStartObject();
                if (r.key() != null) {
                    g.writeStringField("key", r.key());
                }
                byte[] v = r.valueNoCopy();
                if (r.isJson()) {
                    g.writeFieldName("value");
                    g.writeRawValue(new String(v, StandardCharsets.UTF_8));
                } else if (v.length > 0) {
                    g.writeFieldName("value_base64");
                    g.writeBinary(v);
                }
                g.writeEndObject();
            }
            g.writeEndArray();
            g.writeEndObject();
        }
        return out.toByteArray();
    }

    @SuppressWarnings("unused")
    private static ObjectNode unusedTypes(ArrayNode a) {
        return null;
    }
}
