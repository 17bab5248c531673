package icebox.runtime;

import com.amazonaws.services.lambda.runtime.Client;
import com.amazonaws.services.lambda.runtime.ClientContext;
import com.amazonaws.services.lambda.runtime.CognitoIdentity;
import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.LambdaLogger;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/** One event from /runtime/invocation/next, and the Context handlers see for it. */
final class Invocation implements Context {
    final String requestId;
    final long deadlineMs;
    final String functionArn;
    final String traceId;
    final String clientContextJson;
    final String cognitoJson;
    final byte[] body;
    private final Function function;

    Invocation(Function function, String requestId, long deadlineMs, String functionArn, String traceId,
            String clientContextJson, String cognitoJson, byte[] body) {
        this.function = function;
        this.requestId = requestId;
        this.deadlineMs = deadlineMs;
        this.functionArn = functionArn;
        this.traceId = traceId;
        this.clientContextJson = clientContextJson;
        this.cognitoJson = cognitoJson;
        this.body = body;
    }

    /** What stays the same for every call: the function's configuration, from the environment. */
    static final class Function {
        final String name = env("AWS_LAMBDA_FUNCTION_NAME");
        final String version = env("AWS_LAMBDA_FUNCTION_VERSION");
        final String logGroup = env("AWS_LAMBDA_LOG_GROUP_NAME");
        final String logStream = env("AWS_LAMBDA_LOG_STREAM_NAME");
        final int memoryMB = parseInt(env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"));
        final Logger logger = new Logger();

        private static String env(String k) {
            return System.getenv(k);
        }

        private static int parseInt(String s) {
            try {
                return s == null ? 0 : Integer.parseInt(s.trim());
            } catch (NumberFormatException e) {
                return 0;
            }
        }
    }

    @Override
    public String getAwsRequestId() {
        return requestId;
    }

    @Override
    public String getLogGroupName() {
        return function.logGroup;
    }

    @Override
    public String getLogStreamName() {
        return function.logStream;
    }

    @Override
    public String getFunctionName() {
        return function.name;
    }

    @Override
    public String getFunctionVersion() {
        return function.version;
    }

    @Override
    public String getInvokedFunctionArn() {
        return functionArn;
    }

    @Override
    public String getXrayTraceId() {
        return traceId;
    }

    private volatile CognitoIdentity identity;
    private volatile ClientContext clientContext;

    @Override
    public CognitoIdentity getIdentity() {
        if (identity == null && cognitoJson != null && !cognitoJson.isEmpty()) {
            Map<String, Object> m = object(cognitoJson);
            identity = new Identity(str(m.get("cognitoIdentityId")), str(m.get("cognitoIdentityPoolId")));
        }
        return identity;
    }

    @Override
    public ClientContext getClientContext() {
        if (clientContext == null && clientContextJson != null && !clientContextJson.isEmpty()) {
            Map<String, Object> m = object(clientContextJson);
            Map<String, Object> c = asMap(m.get("client"));
            ClientInfo client = c.isEmpty() ? null : new ClientInfo(str(c.get("installation_id")), str(c.get("app_title")),
                    str(c.get("app_version_name")), str(c.get("app_version_code")), str(c.get("app_package_name")));
            clientContext = new ClientCtx(client, strings(m.get("custom")), strings(m.get("env")));
        }
        return clientContext;
    }

    @Override
    public int getRemainingTimeInMillis() {
        long left = deadlineMs - System.currentTimeMillis();
        return left <= 0 ? 0 : (int) Math.min(left, Integer.MAX_VALUE);
    }

    @Override
    public int getMemoryLimitInMB() {
        return function.memoryMB;
    }

    @Override
    public LambdaLogger getLogger() {
        return function.logger;
    }

    // A malformed header leaves the field empty rather than failing the call.
    private static Map<String, Object> object(String json) {
        try {
            return asMap(Json.parse(json));
        } catch (RuntimeException e) {
            return Collections.emptyMap();
        }
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> asMap(Object o) {
        return o instanceof Map ? (Map<String, Object>) o : Collections.emptyMap();
    }

    private static String str(Object o) {
        return o == null ? null : o instanceof String ? (String) o : Json.write(o);
    }

    private static Map<String, String> strings(Object o) {
        if (!(o instanceof Map)) {
            return null;
        }
        Map<String, String> out = new LinkedHashMap<>();
        for (Map.Entry<String, Object> e : asMap(o).entrySet()) {
            out.put(e.getKey(), str(e.getValue()));
        }
        return out;
    }

    private static final class Identity implements CognitoIdentity {
        private final String id;
        private final String pool;

        Identity(String id, String pool) {
            this.id = id;
            this.pool = pool;
        }

        @Override
        public String getIdentityId() {
            return id;
        }

        @Override
        public String getIdentityPoolId() {
            return pool;
        }
    }

    private static final class ClientInfo implements Client {
        private final String installationId;
        private final String title;
        private final String versionName;
        private final String versionCode;
        private final String packageName;

        ClientInfo(String installationId, String title, String versionName, String versionCode, String packageName) {
            this.installationId = installationId;
            this.title = title;
            this.versionName = versionName;
            this.versionCode = versionCode;
            this.packageName = packageName;
        }

        @Override
        public String getInstallationId() {
            return installationId;
        }

        @Override
        public String getAppTitle() {
            return title;
        }

        @Override
        public String getAppVersionName() {
            return versionName;
        }

        @Override
        public String getAppVersionCode() {
            return versionCode;
        }

        @Override
        public String getAppPackageName() {
            return packageName;
        }
    }

    private static final class ClientCtx implements ClientContext {
        private final Client client;
        private final Map<String, String> custom;
        private final Map<String, String> env;

        ClientCtx(Client client, Map<String, String> custom, Map<String, String> env) {
            this.client = client;
            this.custom = custom;
            this.env = env;
        }

        @Override
        public Client getClient() {
            return client;
        }

        @Override
        public Map<String, String> getCustom() {
            return custom;
        }

        @Override
        public Map<String, String> getEnvironment() {
            return env;
        }
    }
}
