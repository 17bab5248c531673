package com.amazonaws.services.lambda.runtime;

/**
 * A handler taking its input as a Java object mapped from the JSON event and
 * returning an object that is sent back as JSON.
 *
 * @param <I> the input type
 * @param <O> the output type
 */
public interface RequestHandler<I, O> {

    /** Handles one invocation. */
    O handleRequest(I input, Context context);
}
