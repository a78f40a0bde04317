package io.badbatch.client;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.atomic.AtomicLong;

/**
 * clients/BENCH.md: {@code Bench MODE URL STREAM}. append: 100-byte binary records in batches of
 * 100 from 4 threads for BENCH_SECONDS; tail: BENCH_RECORDS records from earliest. Prints one JSON
 * line.
 */
public final class Bench {
    public static void main(String[] args) throws Exception {
        if (args.length != 3) {
            System.err.println("usage: Bench append|tail URL STREAM");
            System.exit(2);
        }
        String mode = args[0];
        String url = args[1];
        String stream = args[2];
        ClientOptions.Builder ob = ClientOptions.builder();
        String token = System.getenv("BADBATCH_TOKEN");
        if (token != null && !token.isEmpty()) {
            ob.token(token);
        }
        BadBatchClient c = BadBatchClient.create(url, ob.build());
        long records;
        double seconds;
        double warmup = Double.parseDouble(env("BENCH_WARMUP_SECONDS", "5"));
        if (mode.equals("append")) {
            double secs = Double.parseDouble(env("BENCH_SECONDS", "5"));
            byte[] value = new byte[100];
            for (int i = 0; i < value.length; i++) {
                value[i] = (byte) ('a' + i % 26);
            }
            List<Record> batch = new ArrayList<>();
            for (int i = 0; i < 100; i++) {
                batch.add(Record.bytes(value));
            }
            // Warm up the connections and the JIT outside the timed part (BENCH_WARMUP_SECONDS, default 5).
            long warmEnd = System.nanoTime() + (long) (warmup * 1e9);
            List<Thread> warmers = new ArrayList<>();
            for (int t = 0; t < 4; t++) {
                Thread th = new Thread(() -> {
                    do {
                        c.appendBatch(stream + "-warmup", batch);
                    } while (System.nanoTime() < warmEnd);
                });
                warmers.add(th);
                th.start();
            }
            for (Thread th : warmers) {
                th.join();
            }
            AtomicLong count = new AtomicLong();
            long start = System.nanoTime();
            long end = start + (long) (secs * 1e9);
            List<Thread> threads = new ArrayList<>();
            List<Throwable> errors = new ArrayList<>();
            int callers = Integer.parseInt(env("BENCH_CALLERS", "4"));
            for (int t = 0; t < callers; t++) {
                Thread th = new Thread(() -> {
                    try {
                        while (System.nanoTime() < end) {
                            AppendResult r = c.appendBatch(stream, batch);
                            count.addAndGet(r.count());
                        }
                    } catch (Throwable e) {
                        synchronized (errors) {
                            errors.add(e);
                        }
                    }
                });
                threads.add(th);
                th.start();
            }
            for (Thread th : threads) {
                th.join();
            }
            seconds = (System.nanoTime() - start) / 1e9;
            if (!errors.isEmpty()) {
                errors.get(0).printStackTrace();
                System.exit(1);
            }
            records = count.get();
        } else if (mode.equals("tail")) {
            long want = Long.parseLong(env("BENCH_RECORDS", "200000"));
            // Warm up the JIT outside the timed part: a first tail of the same stream, for up to
            // BENCH_WARMUP_SECONDS (default 5), then the timed one from earliest.
            long warmEnd = System.nanoTime() + (long) (warmup * 1e9);
            if (warmup > 0) {
                try (Tail t = c.tail(stream, Position.earliest())) {
                    for (long i = 0; i < want && System.nanoTime() < warmEnd; i++) {
                        t.next();
                    }
                }
            }
            long start = System.nanoTime();
            long n = 0;
            try (Tail t = c.tail(stream, Position.earliest())) {
                while (n < want) {
                    StoredRecord r = t.next();
                    if (r.offset() != n) {
                        throw new IllegalStateException("tail: want offset " + n + ", got " + r.offset());
                    }
                    n++;
                }
            }
            seconds = (System.nanoTime() - start) / 1e9;
            records = n;
        } else {
            System.err.println("unknown mode " + mode);
            System.exit(2);
            return;
        }
        c.close();
        System.out.println(String.format(Locale.ROOT,
                "{\"client\":\"java\",\"mode\":\"%s\",\"records\":%d,\"seconds\":%.2f,\"records_per_sec\":%.1f}", mode,
                records, seconds, records / seconds));
    }

    private static String env(String k, String def) {
        String v = System.getenv(k);
        return v == null || v.isEmpty() ? def : v;
    }
}
