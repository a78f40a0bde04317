package io.badbatch.client;

import java.nio.charset.StandardCharsets;
import java.util.Objects;

/**
 * An idempotent producer's append (see {@link AppendOptions.Builder#producer(Producer)}): the
 * producer's id, its epoch (incarnation) and the append's seq within the epoch, from 0. The server
 * appends the next seq, answers a repeat of an accepted seq with the first result
 * ({@link AppendResult#replayed()}), refuses a gap ({@link ProducerSeqGapException}) and an older
 * epoch ({@link ProducerFencedException}). Immutable.
 */
public final class Producer {
    /** The largest epoch or seq: 2^53 - 1, what every client language holds exactly. */
    public static final long MAX_COUNTER = (1L << 53) - 1;

    private final String id;
    private final long epoch;
    private final long seq;

    private Producer(String id, long epoch, long seq) {
        this.id = id;
        this.epoch = epoch;
        this.seq = seq;
    }

    /**
     * A producer's append.
     *
     * @throws InvalidOptionsException for an empty id (or one that is not 1 to 256 printable ASCII
     *     characters), or an epoch or seq outside 0 to 2^53 - 1
     */
    public static Producer of(String id, long epoch, long seq) {
        Objects.requireNonNull(id, "id");
        if (id.isEmpty()) {
            throw BadBatchClient.invalid("producer: a producer needs an id");
        }
        int n = id.getBytes(StandardCharsets.UTF_8).length;
        boolean printable = n <= 256;
        for (int i = 0; i < id.length() && printable; i++) {
            char c = id.charAt(i);
            printable = c >= 0x20 && c <= 0x7e;
        }
        if (!printable) {
            throw BadBatchClient.invalid("producer id: want 1 to 256 printable ASCII characters (it travels in a header)");
        }
        if (epoch < 0 || epoch > MAX_COUNTER || seq < 0 || seq > MAX_COUNTER) {
            throw BadBatchClient.invalid("producer epoch " + epoch + " and seq " + seq + ": want 0 to 2^53-1");
        }
        return new Producer(id, epoch, seq);
    }

    public String id() {
        return id;
    }

    public long epoch() {
        return epoch;
    }

    public long seq() {
        return seq;
    }

    /** The same producer and epoch, at another seq. */
    public Producer withSeq(long seq) {
        return of(id, epoch, seq);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Producer && ((Producer) o).id.equals(id) && ((Producer) o).epoch == epoch
                && ((Producer) o).seq == seq;
    }

    @Override
    public int hashCode() {
        return Objects.hash(id, epoch, seq);
    }

    @Override
    public String toString() {
        return "Producer{id=" + id + ", epoch=" + epoch + ", seq=" + seq + "}";
    }
}
