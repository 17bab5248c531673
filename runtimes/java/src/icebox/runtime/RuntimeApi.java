package icebox.runtime;

import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Proxy;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Locale;
import java.util.Map;

/**
 * The Lambda Runtime API (2018-06-01) as the runtime uses it: HTTP/1.1 over
 * one keep-alive connection to $AWS_LAMBDA_RUNTIME_API, one request at a
 * time.
 *
 * <p>This is a plain socket client rather than java.net.http.HttpClient:
 * building an HttpClient initialises the JDK's TLS stack and default trust
 * store even for http:// and loads some 400 classes, which costs 150–350 ms
 * of every cold start; this client loads a handful. It speaks only what the
 * Runtime API needs: Content-Length requests, and Content-Length or chunked
 * responses.
 */
final class RuntimeApi {
    private static final String PREFIX = "/2018-06-01/runtime/";
    private static final int MAX_LINE = 1 << 20;

    private final String host;
    private final int port;
    private final String hostHeader;
    private final Invocation.Function function;

    private Socket socket;
    private InputStream in;
    private OutputStream out;

    RuntimeApi(String hostPort, Invocation.Function function) {
        int colon = hostPort.lastIndexOf(':');
        this.host = colon < 0 ? hostPort : hostPort.substring(0, colon);
        this.port = colon < 0 ? 80 : Integer.parseInt(hostPort.substring(colon + 1));
        this.hostHeader = hostPort;
        this.function = function;
    }

    /** Blocks until the next event arrives. */
    Invocation next() throws IOException {
        Response r = exchange("GET", "invocation/next", null, null);
        if (r.status != 200) {
            throw new IOException("GET invocation/next: HTTP " + r.status + ": " + new String(r.body, StandardCharsets.UTF_8));
        }
        String id = r.header("lambda-runtime-aws-request-id");
        if (id == null) {
            throw new IOException("GET invocation/next: no Lambda-Runtime-Aws-Request-Id");
        }
        return new Invocation(function, id, parseLong(r.header("lambda-runtime-deadline-ms")),
                r.header("lambda-runtime-invoked-function-arn"),
                r.header("lambda-runtime-trace-id"),
                r.header("lambda-runtime-client-context"),
                r.header("lambda-runtime-cognito-identity"),
                r.body);
    }

    /** Posts a handler's response. */
    void respond(String requestId, byte[] body) throws IOException {
        post("invocation/" + requestId + "/response", body, null);
    }

    /** Posts a failed call's error body. */
    void error(String requestId, byte[] body, String errorType) throws IOException {
        post("invocation/" + requestId + "/error", body, errorType);
    }

    /** Posts the error that kept the function from initialising. */
    void initError(byte[] body, String errorType) throws IOException {
        post("init/error", body, errorType);
    }

    private void post(String path, byte[] body, String errorType) throws IOException {
        Response r = exchange("POST", path, body, errorType);
        // 413 means the platform refused an oversized response and failed the
        // call itself; any other status is the platform's to report.
        if (r.status != 202 && r.status != 413) {
            System.err.println("icebox runtime: POST " + path + ": HTTP " + r.status);
        }
    }

    private static final class Response {
        int status;
        final Map<String, String> headers = new HashMap<>();
        byte[] body;
        boolean close;

        String header(String lowerName) {
            return headers.get(lowerName);
        }
    }

    /**
     * Sends one request and reads its response. A kept-alive connection the
     * server has closed in the meantime is reopened and the request sent
     * once more; a fresh connection's failure is final.
     */
    private Response exchange(String method, String path, byte[] body, String errorType) throws IOException {
        for (int attempt = 0;; attempt++) {
            boolean reused = socket != null;
            if (!reused) {
                connect();
            }
            try {
                write(method, path, body, errorType);
                Response r = read();
                if (r.close) {
                    close();
                }
                return r;
            } catch (IOException e) {
                close();
                if (!reused || attempt > 0) {
                    throw e;
                }
            }
        }
    }

    private void connect() throws IOException {
        // No proxy selection and no name service for the usual numeric
        // address: both cost cold-start time and neither applies.
        Socket s = new Socket(Proxy.NO_PROXY);
        try {
            s.setTcpNoDelay(true);
            s.connect(new InetSocketAddress(address(host), port), 5000);
        } catch (IOException e) {
            s.close();
            throw e;
        }
        socket = s;
        in = new BufferedInputStream(s.getInputStream(), 64 << 10);
        out = s.getOutputStream();
    }

    /** host as an address: a dotted IPv4 literal without a lookup, else resolved. */
    private static InetAddress address(String host) throws IOException {
        String[] parts = host.split("\\.", -1);
        if (parts.length == 4) {
            byte[] b = new byte[4];
            try {
                for (int i = 0; i < 4; i++) {
                    int v = Integer.parseInt(parts[i]);
                    if (v < 0 || v > 255) {
                        throw new NumberFormatException(parts[i]);
                    }
                    b[i] = (byte) v;
                }
                return InetAddress.getByAddress(b);
            } catch (NumberFormatException e) {
                // not a literal: resolve it below
            }
        }
        return InetAddress.getByName(host);
    }

    private void close() {
        if (socket != null) {
            try {
                socket.close();
            } catch (IOException e) {
                // nothing to do: the connection is gone either way
            }
        }
        socket = null;
        in = null;
        out = null;
    }

    private void write(String method, String path, byte[] body, String errorType) throws IOException {
        StringBuilder h = new StringBuilder(256);
        h.append(method).append(' ').append(PREFIX).append(safe(path)).append(" HTTP/1.1\r\n");
        h.append("Host: ").append(hostHeader).append("\r\n");
        h.append("User-Agent: icebox-java-runtime\r\n");
        if (body != null) {
            h.append("Content-Type: application/json\r\n");
            h.append("Content-Length: ").append(body.length).append("\r\n");
        }
        if (errorType != null) {
            h.append("Lambda-Runtime-Function-Error-Type: ").append(safe(errorType)).append("\r\n");
        }
        h.append("\r\n");
        byte[] head = h.toString().getBytes(StandardCharsets.UTF_8);
        if (body != null && body.length <= 16 << 10) {
            // One write, one segment: the common small response.
            byte[] all = new byte[head.length + body.length];
            System.arraycopy(head, 0, all, 0, head.length);
            System.arraycopy(body, 0, all, head.length, body.length);
            out.write(all);
        } else {
            out.write(head);
            if (body != null) {
                out.write(body);
            }
        }
        out.flush();
    }

    /** Header values never carry line breaks into the request. */
    private static String safe(String s) {
        if (s.indexOf('\r') < 0 && s.indexOf('\n') < 0) {
            return s;
        }
        return s.replace('\r', ' ').replace('\n', ' ');
    }

    private Response read() throws IOException {
        Response r = new Response();
        String status = line();
        // "HTTP/1.1 200 OK"
        int sp = status.indexOf(' ');
        if (!status.startsWith("HTTP/1.") || sp < 0 || status.length() < sp + 4) {
            throw new IOException("malformed status line: " + status);
        }
        try {
            r.status = Integer.parseInt(status.substring(sp + 1, sp + 4));
        } catch (NumberFormatException e) {
            throw new IOException("malformed status line: " + status);
        }
        r.close = status.startsWith("HTTP/1.0");
        for (;;) {
            String l = line();
            if (l.isEmpty()) {
                break;
            }
            int colon = l.indexOf(':');
            if (colon <= 0) {
                continue;
            }
            r.headers.putIfAbsent(l.substring(0, colon).trim().toLowerCase(Locale.ROOT), l.substring(colon + 1).trim());
        }
        String conn = r.header("connection");
        if (conn != null) {
            r.close = conn.equalsIgnoreCase("close");
        }
        String te = r.header("transfer-encoding");
        String cl = r.header("content-length");
        if (te != null && te.toLowerCase(Locale.ROOT).contains("chunked")) {
            r.body = chunked();
        } else if (cl != null) {
            long n = parseLong(cl);
            if (n < 0 || n > Integer.MAX_VALUE - 8) {
                throw new IOException("bad Content-Length: " + cl);
            }
            r.body = exactly((int) n);
        } else if (r.status == 204 || r.status == 304 || r.status / 100 == 1) {
            r.body = new byte[0];
        } else {
            r.body = in.readAllBytes(); // delimited by the connection's end
            r.close = true;
        }
        return r;
    }

    private byte[] exactly(int n) throws IOException {
        byte[] b = in.readNBytes(n);
        if (b.length != n) {
            throw new EOFException("connection closed after " + b.length + " of " + n + " body bytes");
        }
        return b;
    }

    private byte[] chunked() throws IOException {
        ByteArrayOutputStream body = new ByteArrayOutputStream();
        for (;;) {
            String size = line();
            int semi = size.indexOf(';');
            if (semi >= 0) {
                size = size.substring(0, semi);
            }
            int n;
            try {
                n = Integer.parseInt(size.trim(), 16);
            } catch (NumberFormatException e) {
                throw new IOException("malformed chunk size: " + size);
            }
            if (n < 0) {
                throw new IOException("malformed chunk size: " + size);
            }
            if (n == 0) {
                while (!line().isEmpty()) {
                    // trailers are of no use here
                }
                return body.toByteArray();
            }
            body.write(exactly(n));
            if (!line().isEmpty()) {
                throw new IOException("malformed chunk: no CRLF after data");
            }
        }
    }

    /** One CRLF- (or LF-) terminated line, without its terminator. */
    private String line() throws IOException {
        ByteArrayOutputStream b = new ByteArrayOutputStream(128);
        for (;;) {
            int c = in.read();
            if (c < 0) {
                throw new EOFException("connection closed by the Runtime API");
            }
            if (c == '\n') {
                break;
            }
            if (b.size() >= MAX_LINE) {
                throw new IOException("response line longer than " + MAX_LINE + " bytes");
            }
            b.write(c);
        }
        int n = b.size();
        byte[] a = b.toByteArray();
        if (n > 0 && a[n - 1] == '\r') {
            n--;
        }
        return new String(a, 0, n, StandardCharsets.UTF_8);
    }

    private static long parseLong(String s) {
        if (s == null) {
            return 0L;
        }
        try {
            return Long.parseLong(s.trim());
        } catch (NumberFormatException e) {
            return 0L;
        }
    }
}
