package example;

import com.amazonaws.services.lambda.runtime.Context;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.util.List;
import java.util.Map;

/** The other handler signatures Lambda supports, one method each. */
public class Methods {
    public static String noArgs() {
        return "no args";
    }

    public String contextOnly(Context context) {
        return "context " + context.getFunctionName();
    }

    public long sum(List<Integer> xs) {
        long s = 0;
        for (int x : xs) {
            s += x;
        }
        return s;
    }

    public String echo(String s) {
        return s;
    }

    public Map<String, List<Order>> orders(Map<String, List<Order>> in, Context context) {
        return in;
    }

    public Order record(Order o) {
        return o;
    }

    public void nothing(Map<String, Object> in) {
    }

    public void streams(InputStream in, OutputStream out) throws IOException {
        out.write('[');
        out.write(in.readAllBytes());
        out.write(']');
    }

    /** Overloads: Lambda picks the longest, a trailing Context counting double. */
    public String pick(String s) {
        return "one";
    }

    public String pick(String s, Context c) {
        return "with context";
    }

    public record Order(String id, int qty, List<String> notes) {
    }

    public String notAHandler(int a, int b, int c, int d) {
        return "never";
    }
}
