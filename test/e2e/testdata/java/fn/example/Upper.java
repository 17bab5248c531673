package example;

import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.RequestStreamHandler;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;

/** Handler example.Upper: a RequestStreamHandler sees the raw bytes. */
public class Upper implements RequestStreamHandler {
    @Override
    public void handleRequest(InputStream input, OutputStream output, Context context) throws IOException {
        String in = new String(input.readAllBytes(), StandardCharsets.UTF_8);
        output.write(in.toUpperCase().getBytes(StandardCharsets.UTF_8));
    }
}
