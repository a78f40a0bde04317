package io.badbatch.client;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executors;

/** A scripted HTTP server for unit tests: each request goes to the handler, which is told its number. */
final class FakeServer implements AutoCloseable {
    interface Handler {
        void handle(HttpExchange ex, int n) throws Exception;
    }

    final HttpServer server;
    final List<HttpExchange> requests = new CopyOnWriteArrayList<>();
    final List<String> bodies = new CopyOnWriteArrayList<>();

    FakeServer(Handler h) throws IOException {
        server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        server.setExecutor(Executors.newCachedThreadPool(r -> {
            Thread t = new Thread(r, "fake-server");
            t.setDaemon(true);
            return t;
        }));
        server.createContext("/", ex -> {
            int n;
            synchronized (this) {
                requests.add(ex);
                bodies.add(new String(ex.getRequestBody().readAllBytes(), StandardCharsets.UTF_8));
                n = requests.size();
            }
            try {
                h.handle(ex, n);
            } catch (Exception e) {
                // the test's own failure shows elsewhere
            } finally {
                ex.close();
            }
        });
        server.start();
    }

    String url() {
        return "http://127.0.0.1:" + server.getAddress().getPort();
    }

    String header(int i, String name) {
        return requests.get(i).getRequestHeaders().getFirst(name);
    }

    static void json(HttpExchange ex, int status, String body) throws IOException {
        byte[] b = body.getBytes(StandardCharsets.UTF_8);
        ex.getResponseHeaders().set("Content-Type", "application/json");
        ex.sendResponseHeaders(status, b.length == 0 ? -1 : b.length);
        if (b.length > 0) {
            try (OutputStream o = ex.getResponseBody()) {
                o.write(b);
            }
        }
    }

    static void error(HttpExchange ex, int status, String code) throws IOException {
        json(ex, status, "{\"error\":{\"code\":\"" + code + "\",\"message\":\"scripted " + code + "\"}}");
    }

    static final String APPENDED = "{\"stream\":\"s\",\"first_offset\":0,\"last_offset\":0,\"count\":1,\"first_seq\":0,"
            + "\"last_seq\":0,\"durability\":\"fsynced\",\"replayed\":false}";

    @Override
    public void close() {
        server.stop(0);
    }
}
