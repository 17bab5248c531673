package example;

import com.amazonaws.services.lambda.runtime.Context;
import greeting.Greeter;
import java.util.List;

/** A POJO handler as Lambda's documentation writes them: Handler example.Hello::handleRequest. */
public class Hello {
    private static int calls;
    private static final long LOADED = System.nanoTime();

    public Response handleRequest(Request request, Context context) {
        calls++;
        context.getLogger().log("handling " + request.getName());
        Response r = new Response();
        r.setGreeting(Greeter.greet(request.getName()));
        r.setCalls(calls);
        r.setLoadedAt(LOADED);
        r.setRequestId(context.getAwsRequestId());
        r.setFunctionName(context.getFunctionName());
        r.setFunctionVersion(context.getFunctionVersion());
        r.setInvokedFunctionArn(context.getInvokedFunctionArn());
        r.setMemoryLimitInMB(context.getMemoryLimitInMB());
        r.setRemainingTimeInMillis(context.getRemainingTimeInMillis());
        r.setLogGroupName(context.getLogGroupName());
        r.setLogStreamName(context.getLogStreamName());
        r.setExecutionEnv(System.getenv("AWS_EXECUTION_ENV"));
        r.setTags(request.getTags());
        r.setCity(request.getAddress() == null ? null : request.getAddress().city);
        r.setZip(request.getAddress() == null ? 0 : request.getAddress().zip);
        r.setLoud(request.loud);
        r.setCount(request.getCount());
        r.setRatio(request.getRatio());
        r.setSharedArchive(sharedArchive());
        if (context.getClientContext() != null) {
            r.setClientCustom(context.getClientContext().getCustom().get("k"));
        }
        return r;
    }

    /** Whether the JVM mapped icebox's class-data archive of the runtime. */
    private static boolean sharedArchive() {
        try {
            return new String(java.nio.file.Files.readAllBytes(java.nio.file.Paths.get("/proc/self/maps"))).contains("/var/runtime/runtime-17.jsa");
        } catch (java.io.IOException e) {
            return false;
        }
    }

    /** Input: bean setters and a public field. */
    public static class Request {
        private String name;
        private Integer count;
        private double ratio;
        private List<String> tags;
        private Address address;
        public boolean loud;

        public String getName() {
            return name;
        }

        public void setName(String name) {
            this.name = name;
        }

        public Integer getCount() {
            return count;
        }

        public void setCount(Integer count) {
            this.count = count;
        }

        public double getRatio() {
            return ratio;
        }

        public void setRatio(double ratio) {
            this.ratio = ratio;
        }

        public List<String> getTags() {
            return tags;
        }

        public void setTags(List<String> tags) {
            this.tags = tags;
        }

        public Address getAddress() {
            return address;
        }

        public void setAddress(Address address) {
            this.address = address;
        }
    }

    /** A nested POJO with public fields only. */
    public static class Address {
        public String city;
        public int zip;
    }

    /** Output: read through public getters; null properties are left out. */
    public static class Response {
        private String greeting;
        private int calls;
        private long loadedAt;
        private String requestId;
        private String functionName;
        private String functionVersion;
        private String invokedFunctionArn;
        private int memoryLimitInMB;
        private int remainingTimeInMillis;
        private String logGroupName;
        private String logStreamName;
        private String executionEnv;
        private List<String> tags;
        private String city;
        private int zip;
        private boolean loud;
        private Integer count;
        private double ratio;
        private String clientCustom;
        private String nothing;
        private boolean sharedArchive;

        public String getGreeting() { return greeting; }
        public void setGreeting(String v) { greeting = v; }
        public int getCalls() { return calls; }
        public void setCalls(int v) { calls = v; }
        public long getLoadedAt() { return loadedAt; }
        public void setLoadedAt(long v) { loadedAt = v; }
        public String getRequestId() { return requestId; }
        public void setRequestId(String v) { requestId = v; }
        public String getFunctionName() { return functionName; }
        public void setFunctionName(String v) { functionName = v; }
        public String getFunctionVersion() { return functionVersion; }
        public void setFunctionVersion(String v) { functionVersion = v; }
        public String getInvokedFunctionArn() { return invokedFunctionArn; }
        public void setInvokedFunctionArn(String v) { invokedFunctionArn = v; }
        public int getMemoryLimitInMB() { return memoryLimitInMB; }
        public void setMemoryLimitInMB(int v) { memoryLimitInMB = v; }
        public int getRemainingTimeInMillis() { return remainingTimeInMillis; }
        public void setRemainingTimeInMillis(int v) { remainingTimeInMillis = v; }
        public String getLogGroupName() { return logGroupName; }
        public void setLogGroupName(String v) { logGroupName = v; }
        public String getLogStreamName() { return logStreamName; }
        public void setLogStreamName(String v) { logStreamName = v; }
        public String getExecutionEnv() { return executionEnv; }
        public void setExecutionEnv(String v) { executionEnv = v; }
        public List<String> getTags() { return tags; }
        public void setTags(List<String> v) { tags = v; }
        public String getCity() { return city; }
        public void setCity(String v) { city = v; }
        public int getZip() { return zip; }
        public void setZip(int v) { zip = v; }
        public boolean isLoud() { return loud; }
        public void setLoud(boolean v) { loud = v; }
        public Integer getCount() { return count; }
        public void setCount(Integer v) { count = v; }
        public double getRatio() { return ratio; }
        public void setRatio(double v) { ratio = v; }
        public String getClientCustom() { return clientCustom; }
        public void setClientCustom(String v) { clientCustom = v; }
        public String getNothing() { return nothing; }
        public boolean isSharedArchive() { return sharedArchive; }
        public void setSharedArchive(boolean v) { sharedArchive = v; }
    }
}
