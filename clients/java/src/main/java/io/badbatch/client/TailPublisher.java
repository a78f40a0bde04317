package io.badbatch.client;

import java.util.Objects;
import java.util.concurrent.Flow;

/**
 * A tail as a {@link Flow.Publisher}: each subscriber gets its own {@link Tail} (a cold
 * publisher), opened on a delivery thread of its own, and receives records as it requests them.
 * {@code onError} carries the {@link BadBatchException} the tail ended with (or the one opening it
 * failed with); cancelling closes the tail. {@code onComplete} comes only when the stream is
 * closed, after its last record.
 */
final class TailPublisher implements Flow.Publisher<StoredRecord> {
    private final BadBatchClient client;
    private final String stream;
    private final Position from;

    TailPublisher(BadBatchClient client, String stream, Position from) {
        this.client = client;
        this.stream = stream;
        this.from = from;
    }

    @Override
    public void subscribe(Flow.Subscriber<? super StoredRecord> subscriber) {
        Objects.requireNonNull(subscriber, "subscriber");
        Sub s = new Sub(subscriber);
        subscriber.onSubscribe(s);
        Thread t = new Thread(s::deliver, "badbatch-tail-publisher-" + stream);
        t.setDaemon(true);
        s.thread = t;
        t.start();
    }

    private final class Sub implements Flow.Subscription {
        private final Flow.Subscriber<? super StoredRecord> subscriber;
        private long demand;
        private boolean cancelled;
        private Throwable badRequest;
        private Tail tail;
        volatile Thread thread;

        Sub(Flow.Subscriber<? super StoredRecord> subscriber) {
            this.subscriber = subscriber;
        }

        @Override
        public synchronized void request(long n) {
            if (n <= 0) {
                badRequest = new IllegalArgumentException("request(" + n + "): want more than 0 (rule 3.9)");
            } else {
                demand = demand + n < 0 ? Long.MAX_VALUE : demand + n;
            }
            notifyAll();
        }

        @Override
        public void cancel() {
            Tail t;
            synchronized (this) {
                cancelled = true;
                t = tail;
                notifyAll();
            }
            if (t != null) {
                t.close();
            }
        }

        void deliver() {
            Tail t;
            try {
                t = client.tail(stream, from);
            } catch (RuntimeException e) {
                if (!isCancelled()) {
                    subscriber.onError(e);
                }
                return;
            }
            synchronized (this) {
                tail = t;
                if (cancelled) {
                    t.close();
                    return;
                }
            }
            try {
                while (true) {
                    synchronized (this) {
                        while (demand == 0 && !cancelled && badRequest == null) {
                            wait();
                        }
                        if (cancelled) {
                            return;
                        }
                        if (badRequest != null) {
                            cancelled = true;
                            t.close();
                            subscriber.onError(badRequest);
                            return;
                        }
                    }
                    if (!t.hasNext()) {
                        // Closed by cancel(), or the stream was closed: every record was delivered.
                        if (!isCancelled()) {
                            t.close();
                            subscriber.onComplete();
                        }
                        return;
                    }
                    StoredRecord r = t.next();
                    synchronized (this) {
                        if (cancelled) {
                            return;
                        }
                        if (demand != Long.MAX_VALUE) {
                            demand--;
                        }
                    }
                    subscriber.onNext(r);
                }
            } catch (InterruptedException e) {
                t.close();
            } catch (RuntimeException e) {
                t.close();
                if (!isCancelled()) {
                    subscriber.onError(e);
                }
            }
        }

        private synchronized boolean isCancelled() {
            return cancelled;
        }
    }
}
