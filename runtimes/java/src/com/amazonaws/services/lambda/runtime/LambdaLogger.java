package com.amazonaws.services.lambda.runtime;

import com.amazonaws.services.lambda.runtime.logging.LogLevel;

/** Writes to the function's log. */
public interface LambdaLogger {

    /** Logs a message. */
    void log(String message);

    /** Logs raw bytes. */
    void log(byte[] message);

    /** Logs a message at a level (under the JSON log format, dropped below the function's level). */
    default void log(String message, LogLevel logLevel) {
        log(message);
    }

    /** Logs raw bytes at a level (under the JSON log format, dropped below the function's level). */
    default void log(byte[] message, LogLevel logLevel) {
        log(message);
    }
}
