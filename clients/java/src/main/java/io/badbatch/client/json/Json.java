package io.badbatch.client.json;

import java.math.BigDecimal;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A small, strict JSON codec (RFC 8259), used by the client for its wire format so that the
 * client has no dependency. Not part of the client's API contract; it may change between
 * versions.
 *
 * <p>{@link #parse(String)} turns JSON text into {@code Map<String,Object>} (insertion ordered),
 * {@code List<Object>}, {@code String}, {@code Long} (or {@code BigInteger} when it does not fit),
 * {@code Double} (or {@code BigDecimal} when a double would lose digits), {@code Boolean} and
 * {@code null}. {@link #write(Object)} does the reverse. {@link Reader} is the pull parser under
 * both, working directly on UTF-8 bytes; {@link Writer} appends JSON to a byte buffer.
 */
public final class Json {
    private Json() {}

    /** Parses one JSON text (nothing but whitespace may follow it). */
    public static Object parse(String text) {
        return parse(text.getBytes(StandardCharsets.UTF_8));
    }

    /** Parses one JSON text given as UTF-8 bytes. */
    public static Object parse(byte[] utf8) {
        Reader r = new Reader(utf8, 0, utf8.length);
        Object v = r.readValue();
        r.expectEnd();
        return v;
    }

    /** Serializes a value made of maps, lists, strings, numbers, booleans and nulls. */
    public static String write(Object value) {
        Writer w = new Writer(64);
        w.value(value);
        return w.toUtf8String();
    }

    /** A JSON syntax or type error. */
    public static final class JsonException extends RuntimeException {
        private static final long serialVersionUID = 1L;

        public JsonException(String message) {
            super(message);
        }
    }

    /** A pull parser over UTF-8 bytes. */
    public static final class Reader {
        private final byte[] b;
        private int pos;
        private final int end;
        private char[] chars = new char[64];

        public Reader(byte[] utf8, int off, int len) {
            this.b = utf8;
            this.pos = off;
            this.end = off + len;
        }

        private JsonException error(String what) {
            return new JsonException("json: " + what + " at byte " + pos);
        }

        private void ws() {
            while (pos < end) {
                byte c = b[pos];
                if (c == ' ' || c == '\n' || c == '\r' || c == '\t') {
                    pos++;
                } else {
                    return;
                }
            }
        }

        /** The next significant byte, without consuming it (0 at the end). */
        public byte peek() {
            ws();
            return pos < end ? b[pos] : 0;
        }

        private void expect(char c) {
            ws();
            if (pos >= end || b[pos] != c) {
                throw error("want '" + c + "'");
            }
            pos++;
        }

        public void expectEnd() {
            ws();
            if (pos != end) {
                throw error("trailing data");
            }
        }

        public void beginObject() {
            expect('{');
            first = true;
        }

        public void beginArray() {
            expect('[');
            first = true;
        }

        private boolean first;

        /**
         * In an object or array: whether another member or element follows. Consumes the comma
         * or the closing bracket.
         */
        public boolean hasNext() {
            ws();
            if (pos >= end) {
                throw error("unexpected end");
            }
            byte c = b[pos];
            if (c == '}' || c == ']') {
                pos++;
                first = false;
                return false;
            }
            if (!first) {
                if (c != ',') {
                    throw error("want ',' or a closing bracket");
                }
                pos++;
            }
            first = false;
            return true;
        }

        /** Reads a member name and its colon. */
        public String nextName() {
            String s = nextString();
            expect(':');
            first = false;
            return s;
        }

        /** Whether the next value is null (consumed if so). */
        public boolean nextIsNull() {
            ws();
            if (pos + 4 <= end && b[pos] == 'n' && b[pos + 1] == 'u' && b[pos + 2] == 'l' && b[pos + 3] == 'l') {
                pos += 4;
                return true;
            }
            return false;
        }

        public boolean nextBoolean() {
            ws();
            if (pos + 4 <= end && b[pos] == 't' && b[pos + 1] == 'r' && b[pos + 2] == 'u' && b[pos + 3] == 'e') {
                pos += 4;
                return true;
            }
            if (pos + 5 <= end && b[pos] == 'f' && b[pos + 1] == 'a' && b[pos + 2] == 'l' && b[pos + 3] == 's'
                    && b[pos + 4] == 'e') {
                pos += 5;
                return false;
            }
            throw error("want a boolean");
        }

        /** Reads an integer that fits a long. */
        public long nextLong() {
            ws();
            int start = pos;
            boolean neg = false;
            if (pos < end && b[pos] == '-') {
                neg = true;
                pos++;
            }
            long v = 0;
            int digits = 0;
            while (pos < end && b[pos] >= '0' && b[pos] <= '9') {
                int d = b[pos] - '0';
                if (v > (Long.MAX_VALUE - d) / 10) {
                    throw error("integer overflow");
                }
                v = v * 10 + d;
                pos++;
                digits++;
            }
            if (digits == 0 || (pos < end && (b[pos] == '.' || b[pos] == 'e' || b[pos] == 'E'))) {
                pos = start;
                throw error("want an integer");
            }
            return neg ? -v : v;
        }

        /** Reads a string value. */
        public String nextString() {
            ws();
            if (pos >= end || b[pos] != '"') {
                throw error("want a string");
            }
            pos++;
            int start = pos;
            // Fast path: ASCII without escapes.
            while (pos < end) {
                byte c = b[pos];
                if (c == '"') {
                    String s = new String(b, start, pos - start, StandardCharsets.ISO_8859_1);
                    pos++;
                    return s;
                }
                if (c == '\\' || c < 0x20) {
                    break; // negative bytes (non-ASCII) are < 0x20 too
                }
                pos++;
            }
            pos = start;
            return slowString();
        }

        private String slowString() {
            int n = 0;
            while (true) {
                if (pos >= end) {
                    throw error("unterminated string");
                }
                if (n + 2 > chars.length) {
                    chars = java.util.Arrays.copyOf(chars, chars.length * 2);
                }
                int c = b[pos] & 0xff;
                if (c == '"') {
                    pos++;
                    return new String(chars, 0, n);
                }
                if (c == '\\') {
                    pos++;
                    if (pos >= end) {
                        throw error("bad escape");
                    }
                    byte e = b[pos++];
                    switch (e) {
                        case '"': chars[n++] = '"'; break;
                        case '\\': chars[n++] = '\\'; break;
                        case '/': chars[n++] = '/'; break;
                        case 'b': chars[n++] = '\b'; break;
                        case 'f': chars[n++] = '\f'; break;
                        case 'n': chars[n++] = '\n'; break;
                        case 'r': chars[n++] = '\r'; break;
                        case 't': chars[n++] = '\t'; break;
                        case 'u':
                            if (pos + 4 > end) {
                                throw error("bad \\u escape");
                            }
                            int v = 0;
                            for (int i = 0; i < 4; i++) {
                                int h = Character.digit(b[pos++], 16);
                                if (h < 0) {
                                    throw error("bad \\u escape");
                                }
                                v = v << 4 | h;
                            }
                            chars[n++] = (char) v;
                            break;
                        default:
                            throw error("bad escape");
                    }
                } else if (c < 0x20) {
                    throw error("control character in string");
                } else if (c < 0x80) {
                    chars[n++] = (char) c;
                    pos++;
                } else {
                    int cp;
                    int need;
                    if (c >= 0xc2 && c <= 0xdf) {
                        cp = c & 0x1f;
                        need = 1;
                    } else if (c >= 0xe0 && c <= 0xef) {
                        cp = c & 0x0f;
                        need = 2;
                    } else if (c >= 0xf0 && c <= 0xf4) {
                        cp = c & 0x07;
                        need = 3;
                    } else {
                        throw error("invalid UTF-8");
                    }
                    if (pos + need >= end) {
                        throw error("invalid UTF-8");
                    }
                    pos++;
                    for (int i = 0; i < need; i++) {
                        int cc = b[pos++] & 0xff;
                        if ((cc & 0xc0) != 0x80) {
                            throw error("invalid UTF-8");
                        }
                        cp = cp << 6 | (cc & 0x3f);
                    }
                    if ((need == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (need == 3 && (cp < 0x10000 || cp > 0x10ffff))) {
                        throw error("invalid UTF-8");
                    }
                    n += Character.toChars(cp, chars, n);
                }
            }
        }

        /** Skips one value and returns its span as {start, end} byte positions. */
        public int[] skipValue() {
            ws();
            int start = pos;
            skip();
            return new int[] {start, pos};
        }

        /** Skips one value and returns its bytes (JSON text, as sent). */
        public byte[] rawValue() {
            int[] s = skipValue();
            return java.util.Arrays.copyOfRange(b, s[0], s[1]);
        }

        private void skip() {
            byte c = peek();
            switch (c) {
                case '{':
                    beginObject();
                    while (hasNext()) {
                        nextName();
                        skip();
                    }
                    first = false;
                    return;
                case '[':
                    beginArray();
                    while (hasNext()) {
                        skip();
                    }
                    first = false;
                    return;
                case '"':
                    nextString();
                    return;
                default:
                    readScalar();
            }
        }

        /** Reads any value into maps, lists and scalars. */
        public Object readValue() {
            byte c = peek();
            switch (c) {
                case '{': {
                    beginObject();
                    Map<String, Object> m = new LinkedHashMap<>();
                    while (hasNext()) {
                        String k = nextName();
                        if (m.containsKey(k)) {
                            throw error("duplicate member \"" + k + "\"");
                        }
                        m.put(k, readValue());
                    }
                    first = false;
                    return m;
                }
                case '[': {
                    beginArray();
                    List<Object> l = new ArrayList<>();
                    while (hasNext()) {
                        l.add(readValue());
                    }
                    first = false;
                    return l;
                }
                case '"':
                    return nextString();
                default:
                    return readScalar();
            }
        }

        private Object readScalar() {
            ws();
            if (pos >= end) {
                throw error("unexpected end");
            }
            byte c = b[pos];
            if (c == 't' || c == 'f') {
                return nextBoolean();
            }
            if (nextIsNull()) {
                return null;
            }
            if (c == '-' || (c >= '0' && c <= '9')) {
                int start = pos;
                if (b[pos] == '-') {
                    pos++;
                }
                int intStart = pos;
                while (pos < end && b[pos] >= '0' && b[pos] <= '9') {
                    pos++;
                }
                if (pos == intStart || (b[intStart] == '0' && pos - intStart > 1)) {
                    throw error("bad number");
                }
                boolean integral = true;
                if (pos < end && b[pos] == '.') {
                    integral = false;
                    pos++;
                    int f = pos;
                    while (pos < end && b[pos] >= '0' && b[pos] <= '9') {
                        pos++;
                    }
                    if (pos == f) {
                        throw error("bad number");
                    }
                }
                if (pos < end && (b[pos] == 'e' || b[pos] == 'E')) {
                    integral = false;
                    pos++;
                    if (pos < end && (b[pos] == '+' || b[pos] == '-')) {
                        pos++;
                    }
                    int e = pos;
                    while (pos < end && b[pos] >= '0' && b[pos] <= '9') {
                        pos++;
                    }
                    if (pos == e) {
                        throw error("bad number");
                    }
                }
                String s = new String(b, start, pos - start, StandardCharsets.ISO_8859_1);
                if (integral) {
                    if (pos - start < 19) {
                        return Long.parseLong(s);
                    }
                    BigInteger bi = new BigInteger(s);
                    return bi.bitLength() < 64 ? (Object) bi.longValue() : bi;
                }
                double d = Double.parseDouble(s);
                BigDecimal exact = new BigDecimal(s);
                if (!Double.isInfinite(d) && new BigDecimal(d).compareTo(exact) == 0) {
                    return d;
                }
                if (!Double.isInfinite(d) && BigDecimal.valueOf(d).compareTo(exact) == 0) {
                    return d;
                }
                return exact;
            }
            throw error("unexpected character '" + (char) c + "'");
        }
    }

    /** Appends JSON to a growable byte buffer. */
    public static final class Writer {
        private byte[] buf;
        private int n;

        public Writer(int capacity) {
            buf = new byte[Math.max(16, capacity)];
        }

        private void ensure(int more) {
            if (n + more > buf.length) {
                buf = java.util.Arrays.copyOf(buf, Math.max(buf.length * 2, n + more));
            }
        }

        public Writer raw(char c) {
            ensure(1);
            buf[n++] = (byte) c;
            return this;
        }

        /** Appends ASCII text as is (field names, punctuation). */
        public Writer ascii(String s) {
            int len = s.length();
            ensure(len);
            for (int i = 0; i < len; i++) {
                buf[n++] = (byte) s.charAt(i);
            }
            return this;
        }

        /** Appends bytes as is (already JSON text). */
        public Writer raw(byte[] bytes) {
            ensure(bytes.length);
            System.arraycopy(bytes, 0, buf, n, bytes.length);
            n += bytes.length;
            return this;
        }

        private static final byte[] B64 =
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".getBytes(StandardCharsets.ISO_8859_1);

        /** Appends bytes as standard, padded base64 (RFC 4648), without quotes. */
        public Writer base64(byte[] src) {
            int n3 = src.length / 3 * 3;
            ensure((src.length + 2) / 3 * 4);
            int i = 0;
            for (; i < n3; i += 3) {
                int v = (src[i] & 0xff) << 16 | (src[i + 1] & 0xff) << 8 | (src[i + 2] & 0xff);
                buf[n++] = B64[v >>> 18];
                buf[n++] = B64[v >>> 12 & 63];
                buf[n++] = B64[v >>> 6 & 63];
                buf[n++] = B64[v & 63];
            }
            int rest = src.length - i;
            if (rest == 1) {
                int v = (src[i] & 0xff) << 16;
                buf[n++] = B64[v >>> 18];
                buf[n++] = B64[v >>> 12 & 63];
                buf[n++] = '=';
                buf[n++] = '=';
            } else if (rest == 2) {
                int v = (src[i] & 0xff) << 16 | (src[i + 1] & 0xff) << 8;
                buf[n++] = B64[v >>> 18];
                buf[n++] = B64[v >>> 12 & 63];
                buf[n++] = B64[v >>> 6 & 63];
                buf[n++] = '=';
            }
            return this;
        }

        public Writer number(long v) {
            return ascii(Long.toString(v));
        }

        private static final byte[] HEX = "0123456789abcdef".getBytes(StandardCharsets.ISO_8859_1);

        /** Appends a quoted, escaped string. */
        public Writer string(String s) {
            int len = s.length();
            ensure(len + 2);
            buf[n++] = '"';
            for (int i = 0; i < len; i++) {
                char c = s.charAt(i);
                if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
                    ensure(1);
                    buf[n++] = (byte) c;
                } else if (c == '"' || c == '\\') {
                    ensure(2);
                    buf[n++] = '\\';
                    buf[n++] = (byte) c;
                } else if (c < 0x20) {
                    ensure(6);
                    buf[n++] = '\\';
                    switch (c) {
                        case '\n': buf[n++] = 'n'; break;
                        case '\r': buf[n++] = 'r'; break;
                        case '\t': buf[n++] = 't'; break;
                        default:
                            buf[n++] = 'u';
                            buf[n++] = '0';
                            buf[n++] = '0';
                            buf[n++] = HEX[c >> 4];
                            buf[n++] = HEX[c & 15];
                    }
                } else if (Character.isHighSurrogate(c) && i + 1 < len && Character.isLowSurrogate(s.charAt(i + 1))) {
                    int cp = Character.toCodePoint(c, s.charAt(++i));
                    ensure(4);
                    buf[n++] = (byte) (0xf0 | cp >> 18);
                    buf[n++] = (byte) (0x80 | (cp >> 12 & 0x3f));
                    buf[n++] = (byte) (0x80 | (cp >> 6 & 0x3f));
                    buf[n++] = (byte) (0x80 | (cp & 0x3f));
                } else if (Character.isSurrogate(c)) {
                    throw new JsonException("json: unpaired surrogate in string");
                } else if (c < 0x800) {
                    ensure(2);
                    buf[n++] = (byte) (0xc0 | c >> 6);
                    buf[n++] = (byte) (0x80 | (c & 0x3f));
                } else {
                    ensure(3);
                    buf[n++] = (byte) (0xe0 | c >> 12);
                    buf[n++] = (byte) (0x80 | (c >> 6 & 0x3f));
                    buf[n++] = (byte) (0x80 | (c & 0x3f));
                }
            }
            ensure(1);
            buf[n++] = '"';
            return this;
        }

        /** Appends any value made of maps, lists, strings, numbers, booleans and nulls. */
        public Writer value(Object v) {
            if (v == null) {
                return ascii("null");
            } else if (v instanceof String) {
                return string((String) v);
            } else if (v instanceof Boolean) {
                return ascii(v.toString());
            } else if (v instanceof Long || v instanceof Integer || v instanceof Short || v instanceof Byte
                    || v instanceof BigInteger) {
                return ascii(v.toString());
            } else if (v instanceof Double || v instanceof Float) {
                double d = ((Number) v).doubleValue();
                if (Double.isNaN(d) || Double.isInfinite(d)) {
                    throw new JsonException("json: " + d + " is not a JSON number");
                }
                if (d == Math.rint(d) && Math.abs(d) < 1e15) {
                    return ascii(Long.toString((long) d));
                }
                return ascii(Double.toString(d));
            } else if (v instanceof BigDecimal) {
                return ascii(((BigDecimal) v).toString());
            } else if (v instanceof Map) {
                raw('{');
                boolean first = true;
                for (Map.Entry<?, ?> e : ((Map<?, ?>) v).entrySet()) {
                    if (!first) {
                        raw(',');
                    }
                    first = false;
                    string(String.valueOf(e.getKey()));
                    raw(':');
                    value(e.getValue());
                }
                return raw('}');
            } else if (v instanceof Iterable) {
                raw('[');
                boolean first = true;
                for (Object o : (Iterable<?>) v) {
                    if (!first) {
                        raw(',');
                    }
                    first = false;
                    value(o);
                }
                return raw(']');
            }
            throw new JsonException("json: cannot write a " + v.getClass().getName());
        }

        public int size() {
            return n;
        }

        public byte[] toByteArray() {
            return java.util.Arrays.copyOf(buf, n);
        }

        public String toUtf8String() {
            return new String(buf, 0, n, StandardCharsets.UTF_8);
        }
    }
}
