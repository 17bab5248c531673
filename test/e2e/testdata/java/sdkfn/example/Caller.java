package example;

import com.amazonaws.services.lambda.runtime.Context;
import java.util.LinkedHashMap;
import java.util.Map;
import software.amazon.awssdk.http.urlconnection.UrlConnectionHttpClient;
import software.amazon.awssdk.services.lambda.LambdaClient;
import software.amazon.awssdk.services.lambda.model.FunctionConfiguration;
import software.amazon.awssdk.services.lambda.model.LambdaException;

/**
 * Calls Lambda (icebox) with the AWS SDK for Java v2, configured only by the
 * environment Lambda sets: region, the role's credentials and the endpoint.
 */
public class Caller {
    private static final LambdaClient LAMBDA = LambdaClient.builder().httpClient(UrlConnectionHttpClient.create()).build();

    public Map<String, Object> handleRequest(Map<String, Object> event, Context context) {
        Map<String, Object> out = new LinkedHashMap<>();
        FunctionConfiguration self = LAMBDA.getFunction(b -> b.functionName(context.getFunctionName())).configuration();
        out.put("functionName", self.functionName());
        out.put("runtime", self.runtimeAsString());
        try {
            LAMBDA.deleteFunction(b -> b.functionName(context.getFunctionName()));
            out.put("deleted", true);
        } catch (LambdaException e) {
            out.put("denied", e.awsErrorDetails().errorCode());
        }
        return out;
    }
}
