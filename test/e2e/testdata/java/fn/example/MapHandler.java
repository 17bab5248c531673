package example;

import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.RequestHandler;
import java.util.List;
import java.util.Map;

/** Handler example.MapHandler: the RequestHandler interface with a Map input. */
public class MapHandler implements RequestHandler<Map<String, Object>, String> {
    private int calls;

    @Override
    public String handleRequest(Map<String, Object> event, Context context) {
        calls++;
        Object n = event.get("n");
        Object list = event.get("list");
        Object nested = event.get("nested");
        return "calls=" + calls
                + " keys=" + event.keySet()
                + " n=" + (n == null ? "null" : n.getClass().getSimpleName() + ":" + n)
                + " list=" + (list instanceof List ? "List" + list : String.valueOf(list))
                + " nested=" + (nested instanceof Map ? "Map" + nested : String.valueOf(nested))
                + " text=" + event.get("text");
    }
}
