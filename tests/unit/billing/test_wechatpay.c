/*
 * billing/wechatpay.c: how WeChat Pay's answers to a deduction or a query become bill outcomes
 * (bill_wx_outcome, a pure function), and answers to a refund (bill_wx_refund_outcome).  The exchanges themselves run against the peer in
 * tests/integration/test_wechatpay.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "billing.h"
#include "cmn/err.h"

/* billing's clock lives in main.c, which this test does not link. */
int64_t bill_now(const bill_t *b)
{
    (void)b;
    return 0;
}

#define OTN "LOT-A*42*b"

static bill_outcome_t outcome(long status, int error, int verified, const char *body)
{
    bill_outcome_t o;
    bill_wx_outcome(status, error, verified, body, body ? strlen(body) : 0, OTN, &o);
    return o;
}

static void test_trade_states(void **state)
{
    (void)state;
    bill_outcome_t o = outcome(200, 0, 1,
                               "{\"out_trade_no\":\"" OTN "\",\"trade_state\":\"SUCCESS\","
                               "\"transaction_id\":\"4200001\"}");
    assert_int_equal(o.kind, BILL_OUT_PAID);
    assert_string_equal(o.ref, "4200001");
    o = outcome(200, 0, 1, "{\"out_trade_no\":\"" OTN "\",\"trade_state\":\"ACCEPTED\"}");
    assert_int_equal(o.kind, BILL_OUT_ACCEPTED);
    o = outcome(200, 0, 1,
                "{\"out_trade_no\":\"" OTN "\",\"trade_state\":\"PAY_FAIL\","
                "\"transaction_id\":\"4200002\"}");
    assert_int_equal(o.kind, BILL_OUT_DECLINED);
    assert_string_equal(o.code, "PAY_FAIL");
    o = outcome(200, 0, 1, "{\"out_trade_no\":\"" OTN "\",\"trade_state\":\"REFUND\"}");
    assert_int_equal(o.kind, BILL_OUT_PAID);
    o = outcome(200, 0, 1, "{\"out_trade_no\":\"" OTN "\",\"trade_state\":\"WHATEVER\"}");
    assert_int_equal(o.kind, BILL_OUT_TRANSIENT);
    /* About another number: never believed as this bill's. */
    o = outcome(200, 0, 1, "{\"out_trade_no\":\"LOT-A*43*b\",\"trade_state\":\"SUCCESS\"}");
    assert_int_equal(o.kind, BILL_OUT_ALERT);
    o = outcome(200, 0, 1, "not json");
    assert_int_equal(o.kind, BILL_OUT_TRANSIENT);
}

static void test_faults_and_refusals(void **state)
{
    (void)state;
    const char *success = "{\"out_trade_no\":\"" OTN "\",\"trade_state\":\"SUCCESS\"}";
    /* An answer whose signature, serial or time failed is never believed, whatever it says. */
    assert_int_equal(outcome(200, 0, 0, success).kind, BILL_OUT_TRANSIENT);
    assert_int_equal(outcome(400, 0, 0, "{\"code\":\"PARAM_ERROR\"}").kind, BILL_OUT_TRANSIENT);
    assert_int_equal(outcome(0, CMN_ETIMEOUT, 0, NULL).kind, BILL_OUT_TRANSIENT);
    assert_int_equal(outcome(0, CMN_EIO, 0, NULL).kind, BILL_OUT_TRANSIENT);
    bill_outcome_t o = outcome(500, 0, 1, "{\"code\":\"SYSTEM_ERROR\"}");
    assert_int_equal(o.kind, BILL_OUT_TRANSIENT);
    assert_string_equal(o.code, "http_500_SYSTEM_ERROR");
    assert_int_equal(outcome(429, 0, 1, "{\"code\":\"FREQUENCY_LIMITED\"}").kind,
                     BILL_OUT_TRANSIENT);
    o = outcome(400, 0, 1, "{\"code\":\"INVALID_REQUEST\",\"message\":\"used\"}");
    assert_int_equal(o.kind, BILL_OUT_ALERT);
    assert_string_equal(o.code, "http_400_INVALID_REQUEST");
    assert_int_equal(outcome(401, 0, 1, "{\"code\":\"SIGN_ERROR\"}").kind, BILL_OUT_ALERT);
    assert_int_equal(outcome(404, 0, 1, "{\"code\":\"ORDER_NOT_EXIST\"}").kind, BILL_OUT_ALERT);
    /* Not sent at all because the request could not be signed: a configuration problem. */
    assert_int_equal(outcome(0, CMN_ECRYPTO, 0, NULL).kind, BILL_OUT_ALERT);
}

#define ORN "LOT-A*42*r1"

static bill_outcome_t refund(long status, int error, int verified, const char *body)
{
    bill_outcome_t o;
    bill_wx_refund_outcome(status, error, verified, body, body ? strlen(body) : 0, ORN, &o);
    return o;
}

static void test_refund_states(void **state)
{
    (void)state;
    bill_outcome_t o = refund(200, 0, 1,
                              "{\"out_refund_no\":\"" ORN "\",\"status\":\"SUCCESS\","
                              "\"refund_id\":\"5030001\"}");
    assert_int_equal(o.kind, BILL_OUT_PAID);
    assert_string_equal(o.ref, "5030001");
    o = refund(200, 0, 1, "{\"out_refund_no\":\"" ORN "\",\"status\":\"PROCESSING\"}");
    assert_int_equal(o.kind, BILL_OUT_TRANSIENT);
    assert_string_equal(o.code, "refund_processing");
    o = refund(200, 0, 1, "{\"out_refund_no\":\"" ORN "\",\"status\":\"ABNORMAL\"}");
    assert_int_equal(o.kind, BILL_OUT_ALERT);
    assert_string_equal(o.code, "refund_ABNORMAL");
    assert_int_equal(refund(200, 0, 1, "{\"out_refund_no\":\"" ORN "\",\"status\":\"CLOSED\"}")
                         .kind,
                     BILL_OUT_ALERT);
    /* Another refund's answer, an unverified one, a lost one, a refusal. */
    assert_int_equal(
        refund(200, 0, 1, "{\"out_refund_no\":\"LOT-A*42*r2\",\"status\":\"SUCCESS\"}").kind,
        BILL_OUT_ALERT);
    assert_int_equal(
        refund(200, 0, 0, "{\"out_refund_no\":\"" ORN "\",\"status\":\"SUCCESS\"}").kind,
        BILL_OUT_TRANSIENT);
    assert_int_equal(refund(0, CMN_ETIMEOUT, 0, NULL).kind, BILL_OUT_TRANSIENT);
    assert_int_equal(refund(500, 0, 1, "{\"code\":\"SYSTEM_ERROR\"}").kind, BILL_OUT_TRANSIENT);
    o = refund(400, 0, 1, "{\"code\":\"INVALID_REQUEST\"}");
    assert_int_equal(o.kind, BILL_OUT_ALERT);
    assert_string_equal(o.code, "http_400_INVALID_REQUEST");
    assert_int_equal(refund(200, 0, 1, "{").kind, BILL_OUT_TRANSIENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trade_states),
        cmocka_unit_test(test_faults_and_refusals),
        cmocka_unit_test(test_refund_states),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
