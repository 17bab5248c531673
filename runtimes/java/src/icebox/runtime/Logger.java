package icebox.runtime;

import com.amazonaws.services.lambda.runtime.LambdaLogger;
import com.amazonaws.services.lambda.runtime.logging.LogLevel;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * LambdaLogger as Lambda's Java runtime writes it: one record per call, in
 * the function's log format (AWS_LAMBDA_LOG_FORMAT). Text records are the
 * message, "[LEVEL] message" when a level is given; JSON records are
 * {"timestamp", "message", "level", "AWSRequestId"}, and under JSON those
 * below AWS_LAMBDA_LOG_LEVEL are dropped. Records go to the telemetry
 * descriptor Lambda names in _LAMBDA_TELEMETRY_LOG_FD, one frame each
 * (type 0xA55A0000 | level << 2 | JSON 2 or text 3, length, microseconds),
 * so a multi-line message stays one log event; without one, to stdout.
 */
final class Logger implements LambdaLogger {
    private final boolean json = "JSON".equalsIgnoreCase(System.getenv("AWS_LAMBDA_LOG_FORMAT"));
    private final LogLevel min = minLevel(json);
    private final OutputStream telemetry = open(System.getenv("_LAMBDA_TELEMETRY_LOG_FD"));
    /** The call in progress, for JSON records; null during init. */
    volatile String requestId;
    private DateTimeFormatter timestamps; // made on first use: it costs class loading

    private static LogLevel minLevel(boolean json) {
        try {
            return json ? LogLevel.fromString(System.getenv("AWS_LAMBDA_LOG_LEVEL")) : LogLevel.UNDEFINED;
        } catch (RuntimeException e) {
            return LogLevel.UNDEFINED;
        }
    }

    private static OutputStream open(String fd) {
        if (fd == null || !fd.matches("[0-9]+")) {
            return null;
        }
        try {
            return new FileOutputStream("/proc/self/fd/" + fd);
        } catch (IOException e) {
            return null;
        }
    }

    @Override
    public void log(String message) {
        log(message, LogLevel.UNDEFINED);
    }

    @Override
    public void log(byte[] message) {
        log(message, LogLevel.UNDEFINED);
    }

    @Override
    public void log(String message, LogLevel level) {
        log((message == null ? "null" : message).getBytes(StandardCharsets.UTF_8), level);
    }

    @Override
    public void log(byte[] message, LogLevel level) {
        if (level == null) {
            level = LogLevel.UNDEFINED;
        }
        if (level != LogLevel.UNDEFINED && level.ordinal() < min.ordinal()) {
            return;
        }
        byte[] rec = json ? jsonRecord(new String(message, StandardCharsets.UTF_8), level) : textRecord(message, level);
        write(rec, level.ordinal());
    }

    private static byte[] textRecord(byte[] message, LogLevel level) {
        if (level == LogLevel.UNDEFINED) {
            return message;
        }
        byte[] head = ("[" + level + "] ").getBytes(StandardCharsets.US_ASCII);
        byte[] out = new byte[head.length + message.length];
        System.arraycopy(head, 0, out, 0, head.length);
        System.arraycopy(message, 0, out, head.length, message.length);
        return out;
    }

    private byte[] jsonRecord(String message, LogLevel level) {
        if (timestamps == null) {
            timestamps = DateTimeFormatter.ofPattern("yyyy-MM-dd'T'HH:mm:ss.SSS'Z'").withZone(ZoneOffset.UTC);
        }
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("timestamp", timestamps.format(java.time.Instant.now()));
        m.put("message", message);
        m.put("level", level.toString());
        m.put("AWSRequestId", requestId);
        return Json.write(m).getBytes(StandardCharsets.UTF_8);
    }

    /** Writes one record: a frame, or a line on stdout. */
    synchronized void write(byte[] rec, int level) {
        if (telemetry == null) {
            synchronized (System.out) {
                System.out.write(rec, 0, rec.length);
                if (rec.length == 0 || rec[rec.length - 1] != '\n') {
                    System.out.write('\n');
                }
                System.out.flush();
            }
            return;
        }
        ByteBuffer frame = ByteBuffer.allocate(16 + rec.length);
        frame.putInt(0xA55A0000 | level << 2 | (json ? 2 : 3));
        frame.putInt(rec.length);
        frame.putLong(System.currentTimeMillis() * 1000);
        frame.put(rec);
        try {
            telemetry.write(frame.array());
        } catch (IOException e) {
            // The platform is gone: nothing left to log to.
        }
    }

    /** Logs an error the runtime reports (an exception's trace) as one record. */
    void error(String report) {
        if (json) {
            log(report, LogLevel.ERROR);
        } else {
            write(report.getBytes(StandardCharsets.UTF_8), LogLevel.ERROR.ordinal());
        }
    }
}
