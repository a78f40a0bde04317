package io.badbatch.client;

import java.util.OptionalLong;

/**
 * {@code producer_fenced}: an idempotent producer's epoch is older than its current one (403): a
 * newer incarnation took over. Nothing was stored. {@link #producerEpoch()} is the current epoch
 * ({@code Producer-Epoch}).
 */
public class ProducerFencedException extends BadBatchException {
    private static final long serialVersionUID = 1L;

    private final long producerEpoch;

    ProducerFencedException(Details d) {
        super(d);
        this.producerEpoch = d.producerEpoch;
    }

    /** The producer's current epoch; empty if the server did not say. */
    public OptionalLong producerEpoch() {
        return producerEpoch < 0 ? OptionalLong.empty() : OptionalLong.of(producerEpoch);
    }
}
