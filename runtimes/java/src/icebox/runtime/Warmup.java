package icebox.runtime;

import com.amazonaws.services.lambda.runtime.Context;
import java.util.List;
import java.util.Map;

/**
 * The handler of the training run that records the runtime's class-data
 * archive (see runtimes/java.go). It walks the paths functions take (a POJO
 * mapped from JSON through setters and fields, generic lists and maps, a
 * record, a POJO written back through getters, the context, and an
 * exception thrown through reflection) so that the classes involved load
 * from the archive at each cold start.
 */
public final class Warmup {

    public Result handleRequest(Event event, Context context) {
        context.getLogger().log("warmup " + context.getAwsRequestId() + " " + context.getRemainingTimeInMillis());
        if (event.fail) {
            throw new IllegalStateException("warmup failure");
        }
        Result r = new Result();
        r.setText(event.getText());
        r.setItems(event.getItems());
        r.setMap(event.getMap());
        r.setPoint(event.getPoint());
        r.setCount(event.getItems() == null ? 0 : event.getItems().size());
        return r;
    }

    /** Input: setters and a public field. */
    public static final class Event {
        private String text;
        private List<Item> items;
        private Map<String, Object> map;
        private Point point;
        public boolean fail;

        public String getText() {
            return text;
        }

        public void setText(String text) {
            this.text = text;
        }

        public List<Item> getItems() {
            return items;
        }

        public void setItems(List<Item> items) {
            this.items = items;
        }

        public Map<String, Object> getMap() {
            return map;
        }

        public void setMap(Map<String, Object> map) {
            this.map = map;
        }

        public Point getPoint() {
            return point;
        }

        public void setPoint(Point point) {
            this.point = point;
        }
    }

    /** A nested POJO with public fields. */
    public static final class Item {
        public String id;
        public Integer qty;
        public long big;
        public double x;
    }

    /** A record. */
    public record Point(int x, int y) {
    }

    /** Output: getters; null properties left out. */
    public static final class Result {
        private String text;
        private List<Item> items;
        private Map<String, Object> map;
        private Point point;
        private int count;
        private String none;

        public String getText() {
            return text;
        }

        public void setText(String text) {
            this.text = text;
        }

        public List<Item> getItems() {
            return items;
        }

        public void setItems(List<Item> items) {
            this.items = items;
        }

        public Map<String, Object> getMap() {
            return map;
        }

        public void setMap(Map<String, Object> map) {
            this.map = map;
        }

        public Point getPoint() {
            return point;
        }

        public void setPoint(Point point) {
            this.point = point;
        }

        public int getCount() {
            return count;
        }

        public void setCount(int count) {
            this.count = count;
        }

        public String getNone() {
            return none;
        }
    }
}
