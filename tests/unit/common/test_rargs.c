/* Redis argument lists: formatted, concatenated and integer arguments, and the store's limit. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "cmn/mem.h"
#include "cmn/rargs.h"

static void assert_arg(const cmn_rargs_t *a, int i, const char *want)
{
    assert_true(i < a->n);
    assert_int_equal(a->len[i], strlen(want));
    assert_memory_equal(a->v[i], want, a->len[i]);
}

static void test_args(void **state)
{
    (void)state;
    static const long long ints[] = {0, 7, -7, 1790000000, LLONG_MAX, LLONG_MIN};
    cmn_rargs_t *a = cmn_xalloc(sizeof *a);
    cmn_rargs_init(a);
    cmn_rargs_str(a, "EVALSHA");
    cmn_rargs_cat(a, "pk:", "{L1}", ":open", NULL);
    cmn_rargs_cat(a, NULL);
    cmn_rargs_fmt(a, "pk:%s:idem:%d", "{L1}", 20419);
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        cmn_rargs_int(a, ints[i]);
    assert_int_equal(a->overflow, 0);
    assert_arg(a, 0, "EVALSHA");
    assert_arg(a, 1, "pk:{L1}:open");
    assert_arg(a, 2, "");
    assert_arg(a, 3, "pk:{L1}:idem:20419");
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        char want[32];
        snprintf(want, sizeof want, "%lld", ints[i]);
        assert_arg(a, 4 + (int)i, want);
    }
    /* Earlier arguments stay put while later ones are added. */
    assert_arg(a, 1, "pk:{L1}:open");

    /* The store's end: an argument that does not fit marks the list, adds nothing. */
    char big[CMN_RARGS_STORE / 2];
    memset(big, 'k', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    cmn_rargs_init(a);
    cmn_rargs_cat(a, big, NULL);
    assert_int_equal(a->overflow, 0);
    cmn_rargs_cat(a, big, "x", NULL);
    assert_int_equal(a->overflow, 1);
    assert_int_equal(a->n, 1);
    cmn_rargs_init(a);
    for (int i = 0; i < CMN_RARGS_STORE; i++)
        cmn_rargs_int(a, 123456789);
    assert_int_equal(a->overflow, 1);
    cmn_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_args)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
