package com.amazonaws.services.lambda.runtime.logging;

/** Log formats of Lambda's advanced logging controls. */
public enum LogFormat {
    JSON,
    TEXT;

    /** Parses a format name, case-insensitively. */
    public static LogFormat fromString(String logFormat) {
        try {
            return LogFormat.valueOf(logFormat.toUpperCase(java.util.Locale.ROOT));
        } catch (RuntimeException e) {
            throw new IllegalArgumentException("Invalid log format: '" + logFormat
                    + "' expected one of [JSON, TEXT]");
        }
    }
}
