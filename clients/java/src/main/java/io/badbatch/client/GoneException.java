package io.badbatch.client;

/** {@code gone}: an offset below retention, or a stream deleted while forks still read it (410). */
public class GoneException extends BadBatchException {
    private static final long serialVersionUID = 1L;

    GoneException(Details d) {
        super(d);
    }
}
