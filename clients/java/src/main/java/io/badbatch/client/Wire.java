package io.badbatch.client;

import io.badbatch.client.json.Json;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.time.format.DateTimeParseException;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** The wire format: request bodies out, answers in (docs/http-api.md). */
final class Wire {
    private Wire() {}

    private static final byte[] EMPTY = new byte[0];

    /** {@code {"records":[R, ...]}}. */
    static byte[] encodeRecords(List<Record> records) {
        int estimate = 16;
        for (Record r : records) {
            estimate += 24 + r.valueNoCopy().length * (r.isJson() ? 1 : 4) / (r.isJson() ? 1 : 3);
        }
        Json.Writer w = new Json.Writer(estimate);
        w.ascii("{\"records\":[");
        boolean first = true;
        for (Record r : records) {
            if (!first) {
                w.raw(',');
            }
            first = false;
            w.raw('{');
            boolean sep = false;
            if (r.key() != null) {
                w.ascii("\"key\":").string(r.key());
                sep = true;
            }
            byte[] v = r.valueNoCopy();
            if (r.isJson()) {
                if (sep) {
                    w.raw(',');
                }
                w.ascii("\"value\":").raw(v);
                sep = true;
            } else if (v.length > 0) {
                if (sep) {
                    w.raw(',');
                }
                w.ascii("\"value_base64\":\"").base64(v).raw('"');
                sep = true;
            }
            if (!r.headers().isEmpty()) {
                if (sep) {
                    w.raw(',');
                }
                w.ascii("\"headers\":{");
                boolean hf = true;
                for (Map.Entry<String, String> e : r.headers().entrySet()) {
                    if (!hf) {
                        w.raw(',');
                    }
                    hf = false;
                    w.string(e.getKey()).raw(':').string(e.getValue());
                }
                w.raw('}');
                sep = true;
            }
            if (r.timestamp() != null) {
                if (sep) {
                    w.raw(',');
                }
                w.ascii("\"timestamp\":\"").ascii(r.timestamp().toString()).raw('"');
            }
            w.raw('}');
        }
        w.ascii("]}");
        return w.toByteArray();
    }

    static AppendResult decodeAppendResult(byte[] body) {
        Json.Reader r = new Json.Reader(body, 0, body.length);
        String stream = null;
        long firstOffset = 0, lastOffset = 0, firstSeq = 0, lastSeq = 0;
        int count = 0;
        String durability = null;
        boolean replayed = false;
        r.beginObject();
        while (r.hasNext()) {
            String name = r.nextName();
            switch (name) {
                case "stream": stream = r.nextString(); break;
                case "first_offset": firstOffset = r.nextLong(); break;
                case "last_offset": lastOffset = r.nextLong(); break;
                case "count": count = (int) r.nextLong(); break;
                case "first_seq": firstSeq = r.nextLong(); break;
                case "last_seq": lastSeq = r.nextLong(); break;
                case "durability": durability = r.nextString(); break;
                case "replayed": replayed = r.nextBoolean(); break;
                default: r.skipValue();
            }
        }
        return new AppendResult(stream, firstOffset, lastOffset, count, firstSeq, lastSeq, durability, replayed);
    }

    static Page decodePage(byte[] body, String stream) {
        Json.Reader r = new Json.Reader(body, 0, body.length);
        List<StoredRecord> records = List.of();
        long next = 0;
        r.beginObject();
        while (r.hasNext()) {
            String name = r.nextName();
            if (name.equals("records")) {
                records = decodeRecords(r, stream);
            } else if (name.equals("next_offset")) {
                next = r.nextLong();
            } else {
                r.skipValue();
            }
        }
        return new Page(records, next);
    }

    static GlobalPage decodeGlobalPage(byte[] body) {
        Json.Reader r = new Json.Reader(body, 0, body.length);
        List<StoredRecord> records = List.of();
        long next = 0;
        r.beginObject();
        while (r.hasNext()) {
            String name = r.nextName();
            if (name.equals("records")) {
                records = decodeRecords(r, null);
            } else if (name.equals("next_seq")) {
                next = r.nextLong();
            } else {
                r.skipValue();
            }
        }
        return new GlobalPage(records, next);
    }

    private static List<StoredRecord> decodeRecords(Json.Reader r, String stream) {
        if (r.nextIsNull()) {
            return List.of();
        }
        List<StoredRecord> out = new ArrayList<>();
        r.beginArray();
        while (r.hasNext()) {
            out.add(decodeRecord(r, stream));
        }
        return Collections.unmodifiableList(out);
    }

    /** One stored record; {@code stream} names it when the JSON does not. */
    static StoredRecord decodeRecord(Json.Reader r, String stream) {
        long offset = 0, seq = 0;
        Instant ts = null;
        String key = null;
        byte[] value = EMPTY;
        boolean json = false;
        Map<String, String> headers = Map.of();
        r.beginObject();
        while (r.hasNext()) {
            String name = r.nextName();
            switch (name) {
                case "stream": stream = r.nextString(); break;
                case "offset": offset = r.nextLong(); break;
                case "seq": seq = r.nextLong(); break;
                case "timestamp": ts = parseTime(r.nextString()); break;
                case "key": key = r.nextIsNull() ? null : r.nextString(); break;
                case "key_base64":
                    key = new String(Base64.getDecoder().decode(r.nextString()), StandardCharsets.UTF_8);
                    break;
                case "value":
                    value = r.rawValue();
                    json = true;
                    break;
                case "value_base64": {
                    String s = r.nextString();
                    value = s.isEmpty() ? EMPTY : Base64.getDecoder().decode(s);
                    json = false;
                    break;
                }
                case "headers":
                    if (r.nextIsNull()) {
                        break;
                    }
                    r.beginObject();
                    Map<String, String> h = new LinkedHashMap<>();
                    while (r.hasNext()) {
                        String k = r.nextName();
                        h.put(k, r.nextString());
                    }
                    headers = Collections.unmodifiableMap(h);
                    break;
                default:
                    r.skipValue();
            }
        }
        return new StoredRecord(stream, offset, seq, ts, key, value, json, headers);
    }

    static Instant parseTime(String s) {
        Instant fast = parseTimeFast(s);
        if (fast != null) {
            return fast;
        }
        try {
            return Instant.parse(s);
        } catch (DateTimeParseException e) {
            return java.time.OffsetDateTime.parse(s).toInstant();
        }
    }

    /**
     * The server's own shape, {@code YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z}, without the cost of
     * DateTimeFormatter; null for anything else (the slow path handles it).
     */
    static Instant parseTimeFast(String s) {
        int n = s.length();
        if (n < 20 || s.charAt(4) != '-' || s.charAt(7) != '-' || (s.charAt(10) != 'T' && s.charAt(10) != 't')
                || s.charAt(13) != ':' || s.charAt(16) != ':' || (s.charAt(n - 1) != 'Z' && s.charAt(n - 1) != 'z')) {
            return null;
        }
        int year = digits(s, 0, 4), month = digits(s, 5, 2), day = digits(s, 8, 2);
        int hour = digits(s, 11, 2), min = digits(s, 14, 2), sec = digits(s, 17, 2);
        if (year < 0 || month < 1 || month > 12 || day < 1 || day > 31 || hour < 0 || hour > 23 || min < 0 || min > 59
                || sec < 0 || sec > 59) {
            return null;
        }
        int nanos = 0;
        if (n > 20) {
            if (s.charAt(19) != '.' || n - 21 < 1 || n - 21 > 9) {
                return null;
            }
            int f = digits(s, 20, n - 21);
            if (f < 0) {
                return null;
            }
            nanos = f;
            for (int i = n - 21; i < 9; i++) {
                nanos *= 10;
            }
        } else if (n != 20) {
            return null;
        }
        if (day > java.time.YearMonth.of(year, month).lengthOfMonth()) {
            return null;
        }
        long epochDay = java.time.LocalDate.of(year, month, day).toEpochDay();
        return Instant.ofEpochSecond(epochDay * 86400 + hour * 3600 + min * 60 + sec, nanos);
    }

    private static int digits(String s, int off, int len) {
        int v = 0;
        for (int i = off; i < off + len; i++) {
            char c = s.charAt(i);
            if (c < '0' || c > '9') {
                return -1;
            }
            v = v * 10 + (c - '0');
        }
        return v;
    }

    static StreamInfo decodeStreamInfo(Json.Reader r) {
        String stream = null;
        long first = 0, next = 0, records = 0, bytes = 0;
        Instant last = null, expiresAt = null;
        String contentType = null, forkedFrom = null;
        boolean closed = false;
        long ttl = 0, forkOffset = 0;
        r.beginObject();
        while (r.hasNext()) {
            String name = r.nextName();
            switch (name) {
                case "stream": stream = r.nextString(); break;
                case "first_offset": first = r.nextLong(); break;
                case "next_offset": next = r.nextLong(); break;
                case "records": records = r.nextLong(); break;
                case "bytes": bytes = r.nextLong(); break;
                case "last_timestamp": last = r.nextIsNull() ? null : parseTime(r.nextString()); break;
                case "content_type": contentType = r.nextIsNull() ? null : r.nextString(); break;
                case "closed": closed = !r.nextIsNull() && r.nextBoolean(); break;
                case "ttl_seconds": ttl = r.nextIsNull() ? 0 : r.nextLong(); break;
                case "expires_at": expiresAt = r.nextIsNull() ? null : parseTime(r.nextString()); break;
                case "forked_from": forkedFrom = r.nextIsNull() ? null : r.nextString(); break;
                case "fork_offset": forkOffset = r.nextIsNull() ? 0 : r.nextLong(); break;
                default: r.skipValue();
            }
        }
        if (contentType != null && contentType.isEmpty()) {
            contentType = null;
        }
        if (forkedFrom != null && forkedFrom.isEmpty()) {
            forkedFrom = null;
        }
        return new StreamInfo(stream, first, next, records, bytes, last, contentType, closed, ttl, expiresAt, forkedFrom,
                forkOffset);
    }

    static StreamInfo decodeStreamInfo(byte[] body) {
        return decodeStreamInfo(new Json.Reader(body, 0, body.length));
    }

    static List<StreamInfo> decodeStreams(byte[] body) {
        Json.Reader r = new Json.Reader(body, 0, body.length);
        List<StreamInfo> out = new ArrayList<>();
        r.beginObject();
        while (r.hasNext()) {
            if (r.nextName().equals("streams") && !r.nextIsNull()) {
                r.beginArray();
                while (r.hasNext()) {
                    out.add(decodeStreamInfo(r));
                }
            } else {
                r.skipValue();
            }
        }
        return Collections.unmodifiableList(out);
    }

    /** The fields of a stream's configuration that are set, into a create's or a fork's body. */
    static void putStreamConfig(Map<String, Object> body, StreamConfig c) {
        c.contentType().ifPresent(t -> body.put("content_type", t));
        c.ttl().ifPresent(t -> body.put("ttl_seconds", t.getSeconds()));
        c.expiresAt().ifPresent(t -> body.put("expires_at", t.toString()));
        if (c.closed()) {
            body.put("closed", Boolean.TRUE);
        }
    }

    static long decodeCursor(byte[] body) {
        Json.Reader r = new Json.Reader(body, 0, body.length);
        long offset = -1;
        r.beginObject();
        while (r.hasNext()) {
            if (r.nextName().equals("offset")) {
                offset = r.nextLong();
            } else {
                r.skipValue();
            }
        }
        if (offset < 0) {
            throw new Json.JsonException("cursor answer without an offset");
        }
        return offset;
    }

    /** An error body {@code {"error":{"code","message","current_last_offset"?}}}, or null. */
    static BadBatchException.Details decodeError(byte[] body, int status) {
        if (body == null || body.length == 0) {
            return null;
        }
        try {
            Json.Reader r = new Json.Reader(body, 0, body.length);
            String code = null, message = null;
            long clo = Long.MIN_VALUE;
            r.beginObject();
            while (r.hasNext()) {
                if (r.nextName().equals("error")) {
                    r.beginObject();
                    while (r.hasNext()) {
                        switch (r.nextName()) {
                            case "code": code = r.nextString(); break;
                            case "message": message = r.nextString(); break;
                            case "current_last_offset": clo = r.nextLong(); break;
                            default: r.skipValue();
                        }
                    }
                } else {
                    r.skipValue();
                }
            }
            if (code == null) {
                return null;
            }
            ErrorKind kind = ErrorKind.fromCode(code);
            if (kind == null) {
                kind = ErrorKind.fromStatus(status);
            }
            BadBatchException.Details d = new BadBatchException.Details(kind, code, message == null ? "" : message, status);
            d.currentLastOffset = clo;
            return d;
        } catch (RuntimeException e) {
            return null;
        }
    }
}
