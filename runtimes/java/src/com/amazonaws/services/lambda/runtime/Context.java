package com.amazonaws.services.lambda.runtime;

/**
 * What a handler knows about the invocation it is serving and the function
 * it belongs to. Same methods as Lambda's aws-lambda-java-core, so handlers
 * written for Lambda compile and run against icebox's runtime.
 */
public interface Context {

    /** The request id of this invocation (the id the caller got back). */
    String getAwsRequestId();

    /** The CloudWatch log group of the function. */
    String getLogGroupName();

    /** The log stream of this execution environment. */
    String getLogStreamName();

    /** The function's name. */
    String getFunctionName();

    /** The version being executed, e.g. "$LATEST". */
    String getFunctionVersion();

    /** The ARN the caller used, including any qualifier. */
    String getInvokedFunctionArn();

    /** The Cognito identity of a mobile caller, or null. */
    CognitoIdentity getIdentity();

    /** The client context a mobile caller sent, or null. */
    ClientContext getClientContext();

    /** Milliseconds left before the invocation times out. */
    int getRemainingTimeInMillis();

    /** The function's configured memory in MB. */
    int getMemoryLimitInMB();

    /** A logger writing to the function's log. */
    LambdaLogger getLogger();

    /** The X-Ray trace id of this invocation, or null. */
    default String getXrayTraceId() {
        return null;
    }

    /** The tenant id of a tenant-isolated function, or null. */
    default String getTenantId() {
        return null;
    }
}
