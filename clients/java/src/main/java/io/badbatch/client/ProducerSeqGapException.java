package io.badbatch.client;

import java.util.OptionalLong;

/**
 * {@code producer_seq_gap}: an idempotent producer's seq skips one (409). Nothing was stored. The
 * server names the seq it expected ({@code Producer-Expected-Seq}), the one it received
 * ({@code Producer-Received-Seq}) and the producer's current epoch ({@code Producer-Epoch}).
 */
public class ProducerSeqGapException extends BadBatchException {
    private static final long serialVersionUID = 1L;

    private final long expectedSeq;
    private final long receivedSeq;
    private final long producerEpoch;

    ProducerSeqGapException(Details d) {
        super(d);
        this.expectedSeq = d.expectedSeq;
        this.receivedSeq = d.receivedSeq;
        this.producerEpoch = d.producerEpoch;
    }

    /** The seq the server expected next; empty if it did not say. */
    public OptionalLong expectedSeq() {
        return expectedSeq < 0 ? OptionalLong.empty() : OptionalLong.of(expectedSeq);
    }

    /** The seq the append carried; empty if the server did not say. */
    public OptionalLong receivedSeq() {
        return receivedSeq < 0 ? OptionalLong.empty() : OptionalLong.of(receivedSeq);
    }

    /** The producer's current epoch; empty if the server did not say. */
    public OptionalLong producerEpoch() {
        return producerEpoch < 0 ? OptionalLong.empty() : OptionalLong.of(producerEpoch);
    }
}
