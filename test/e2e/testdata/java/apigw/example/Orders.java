package example;

import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.RequestHandler;
import com.amazonaws.services.lambda.runtime.events.APIGatewayV2HTTPEvent;
import com.amazonaws.services.lambda.runtime.events.APIGatewayV2HTTPResponse;
import java.util.Map;

/** An HTTP API (payload 2.0) handler written against Maven's aws-lambda-java-core and -events. */
public class Orders implements RequestHandler<APIGatewayV2HTTPEvent, APIGatewayV2HTTPResponse> {
    private int calls;

    @Override
    public APIGatewayV2HTTPResponse handleRequest(APIGatewayV2HTTPEvent event, Context context) {
        calls++;
        if ("/fail".equals(event.getRawPath())) {
            throw new IllegalStateException("refused /fail");
        }
        String method = event.getRequestContext().getHttp().getMethod();
        context.getLogger().log("order " + event.getRawPath() + " for " + context.getAwsRequestId());
        return APIGatewayV2HTTPResponse.builder()
                .withStatusCode(201)
                .withHeaders(Map.of("x-path", event.getRawPath(), "x-calls", String.valueOf(calls)))
                .withBody(method + " " + event.getRawPath() + " " + event.getBody())
                .build();
    }
}
