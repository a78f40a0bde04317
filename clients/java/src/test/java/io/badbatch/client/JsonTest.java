package io.badbatch.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.badbatch.client.json.Json;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class JsonTest {
    @Test
    void parsesEveryKindOfValue() {
        Object v = Json.parse(" {\"a\":[1,-2,3.5,1e2,true,false,null],\"s\":\"x\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00\",\"o\":{}} ");
        Map<String, Object> want = new LinkedHashMap<>();
        want.put("a", Arrays.asList(1L, -2L, 3.5, 100.0, true, false, null));
        want.put("s", "x\"\\/\b\f\n\r\té😀");
        want.put("o", Map.of());
        assertEquals(want, v);
        assertEquals(new BigInteger("123456789012345678901234567890"), Json.parse("123456789012345678901234567890"));
        assertEquals(Long.MIN_VALUE, Json.parse(Long.toString(Long.MIN_VALUE)));
        assertEquals(new BigDecimal("0.1000000000000000000000001"), Json.parse("0.1000000000000000000000001"));
        assertEquals("é😀✓", Json.parse("\"é😀✓\""));
    }

    @Test
    void refusesWhatIsNotJson() {
        for (String bad : List.of("", "{", "[1,]", "{\"a\":1,}", "{\"a\" 1}", "01", "1.", "-", "tru", "\"\u0001\"",
                "\"\\x\"", "{\"a\":1,\"a\":2}", "1 2", "[1 2]", "{a:1}", "\"abc")) {
            assertThrows(Json.JsonException.class, () -> Json.parse(bad), bad);
        }
        byte[] badUtf8 = {'"', (byte) 0xc3, '"'};
        assertThrows(Json.JsonException.class, () -> Json.parse(badUtf8));
        byte[] overlong = {'"', (byte) 0xc0, (byte) 0x80, '"'};
        assertThrows(Json.JsonException.class, () -> Json.parse(overlong));
    }

    @Test
    void writesAndReadsBack() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("k", "line\nbreak \u0001 \"q\" é 😀");
        m.put("n", Arrays.asList(1L, 2.5, -0.125, null, true, new BigInteger("99999999999999999999")));
        m.put("nested", Map.of("x", List.of()));
        String text = Json.write(m);
        assertEquals(m, Json.parse(text));
        assertEquals("\"\\u0001\\n\"", Json.write("\u0001\n"));
        assertEquals(Arrays.asList(1L, 2L), Json.parse(Json.write(List.of(1.0, 2))));
    }

    @Test
    void base64MatchesTheJdk() {
        java.util.Random r = new java.util.Random(1);
        for (int len = 0; len < 200; len++) {
            byte[] b = new byte[len];
            r.nextBytes(b);
            assertEquals(java.util.Base64.getEncoder().encodeToString(b), new Json.Writer(8).base64(b).toUtf8String());
        }
    }

    @Test
    void rawValueKeepsTheText() {
        byte[] b = "{\"value\":{\"a\" : [1, 2]},\"next\":3}".getBytes(StandardCharsets.UTF_8);
        Json.Reader r = new Json.Reader(b, 0, b.length);
        r.beginObject();
        r.hasNext();
        assertEquals("value", r.nextName());
        assertEquals("{\"a\" : [1, 2]}", new String(r.rawValue(), StandardCharsets.UTF_8));
        r.hasNext();
        assertEquals("next", r.nextName());
        assertEquals(3, r.nextLong());
    }
}
