/*
 * Unit tests of cmn/plate.h: normalisation, the validation rules of every plate kind, unreadable
 * reads, vehicle classes, fold keys, confusable-aware comparison and masking.  Every case asserts
 * exact return codes, texts and reasons.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>
#include <unicode/unorm2.h>

#include "cmn/err.h"
#include "cmn/plate.h"

/* Bytes a function must not touch (beyond the size it was given) keep this value. */
#define POISON 0x5A

struct fixture {
    char buf[96];
};

static int group_setup(void **state)
{
    UErrorCode st = U_ZERO_ERROR;

    (void)state;
    /* Fail the whole group with one clear message when ICU's normalisation data is missing. */
    unorm2_getNFKCInstance(&st);
    return U_FAILURE(st) ? -1 : 0;
}

static int group_teardown(void **state)
{
    (void)state;
    return 0;
}

static int poison_setup(void **state)
{
    static struct fixture f;

    memset(f.buf, POISON, sizeof f.buf);
    *state = &f;
    return 0;
}

static int poison_teardown(void **state)
{
    *state = NULL;
    return 0;
}

static void assert_poisoned(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        assert_int_equal((unsigned char)p[i], POISON);
}

static void check_norm(const char *in, const char *want)
{
    char out[CMN_PLATE_MAX];

    memset(out, 'x', sizeof out);
    assert_int_equal(cmn_plate_normalize(in, strlen(in), out, sizeof out), (int)strlen(want));
    assert_string_equal(out, want);
}

static void check_norm_error(const char *in, size_t len, int want)
{
    char out[CMN_PLATE_MAX];

    memset(out, 'x', sizeof out);
    assert_int_equal(cmn_plate_normalize(in, len, out, sizeof out), want);
    assert_string_equal(out, "");
}

static void check_valid(const char *in, const char *text, cmn_plate_kind_t kind, const char *vclass)
{
    cmn_plate_t p;

    assert_int_equal(cmn_plate_parse(in, strlen(in), &p), 0);
    assert_string_equal(p.text, text);
    assert_int_equal(p.kind, kind);
    assert_non_null(p.vclass);
    assert_string_equal(p.vclass, vclass);
    assert_null(p.reason);
}

static void check_rejected(const char *in, int rc, const char *reason)
{
    cmn_plate_t p;

    assert_int_equal(cmn_plate_parse(in, strlen(in), &p), rc);
    assert_null(p.vclass);
    assert_non_null(p.reason);
    assert_string_equal(p.reason, reason);
}

static void check_fold(const char *plate, int fold_province, const char *want)
{
    char out[CMN_PLATE_MAX];

    assert_int_equal(cmn_plate_fold_key(plate, fold_province, out, sizeof out), (int)strlen(want));
    assert_string_equal(out, want);
}

static void check_mask(const char *plate, const char *want)
{
    char out[CMN_PLATE_MAX];

    cmn_plate_mask(plate, out, sizeof out);
    assert_string_equal(out, want);
}

/* ---- normalisation ---- */

static void test_normalize_full_width(void **state)
{
    (void)state;
    check_norm("浙Ａ１２３４５", "浙A12345");
    check_norm("ｂ", "B");
    check_norm("鲁Ｑ·５６７８挂", "鲁Q5678挂");
    check_norm("浙A1234①", "浙A12341");
}

static void test_normalize_separators(void **state)
{
    static const char *const inputs[] = {
        "粤Z·1234港",          /* U+00B7 middle dot, which survives NFKC */
        "粤Z-1234港",          /* hyphen-minus */
        "粤Z 1234港",          /* space */
        " 粤Z\t1234港\r\n",    /* other white space, at both ends */
        "粤Z\u30001234港",     /* ideographic space */
        "粤Z\u00a01234港",     /* no-break space */
        "粤Z\u30fb1234港",     /* katakana middle dot */
        "粤Z\u20221234港",     /* bullet */
        "粤Z\u20271234港",     /* hyphenation point */
        "粤Z\u20101234港",     /* hyphen */
        "粤Z\u20111234港",     /* non-breaking hyphen */
        "粤Z\u20121234港",     /* figure dash */
        "粤Z\u20131234港",     /* en dash */
        "粤Z\u20141234港",     /* em dash */
        "粤Z\u20151234港",     /* horizontal bar */
        "粤Z\u22121234港",     /* minus sign */
        "粤Z\uff0d1234港",     /* full-width hyphen, '-' after NFKC */
        "粤Z\uff651234港",     /* half-width middle dot, U+30FB after NFKC */
        "粤 Z · 1 2 3 4 - 港", /* one between every two characters */
    };

    (void)state;
    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++)
        check_norm(inputs[i], "粤Z1234港");
    /* Slash, dot and star are not separators: they reach the sentinel and character rules. */
    check_norm("n/a", "N/A");
    check_norm("浙A12*45", "浙A12*45");
}

static void test_normalize_upper_case(void **state)
{
    (void)state;
    check_norm("浙a12345", "浙A12345");
    check_norm("wj浙12345", "WJ浙12345");
    check_norm("abcdefghijkl", "ABCDEFGHIJKL");
    /* Full case mapping in the root locale: ß becomes SS, i never becomes a dotted capital. */
    check_norm("straße", "STRASSE");
    check_norm("i", "I");
    /* NFKC splits the ligature first, then both letters are upper-cased. */
    check_norm("\ufb01", "FI");
}

static void test_normalize_is_idempotent(void **state)
{
    char once[CMN_PLATE_MAX], twice[CMN_PLATE_MAX];
    int n;

    (void)state;
    /* Removing the hyphen brings A and U+0301 together: the output is the composed Á. */
    check_norm("A-\u0301", "\u00c1");
    /* Upper-casing ΐ gives Ι, U+0308, U+0301, which NFKC composes again into Ϊ and U+0301. */
    check_norm("\u0390", "\u03aa\u0301");
    n = cmn_plate_normalize("a-\u0301 b", 6, once, sizeof once);
    assert_int_equal(n, 3);
    assert_string_equal(once, "\u00c1B");
    assert_int_equal(cmn_plate_normalize(once, (size_t)n, twice, sizeof twice), n);
    assert_string_equal(twice, once);
}

static void test_normalize_uses_len(void **state)
{
    char out[CMN_PLATE_MAX];

    (void)state;
    /* Not NUL-terminated: only the first 9 bytes (浙A12345) count. */
    assert_int_equal(cmn_plate_normalize("浙A12345XYZ", 9, out, sizeof out), 9);
    assert_string_equal(out, "浙A12345");
    /* Cutting inside a character leaves ill-formed UTF-8. */
    check_norm_error("浙A12345", 2, CMN_EPARSE);
}

static void test_normalize_invalid_utf8(void **state)
{
    static const char *const inputs[] = {
        "\xff",
        "\xc0\xaf",         /* overlong '/' */
        "\xed\xa0\x80",     /* UTF-16 surrogate D800 */
        "\xe6\xb5",         /* 浙 without its last byte */
        "\xf4\x90\x80\x80", /* above U+10FFFF */
        "浙A\20012345",     /* stray continuation byte */
    };

    (void)state;
    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++)
        check_norm_error(inputs[i], strlen(inputs[i]), CMN_EPARSE);
}

static void test_normalize_nul(void **state)
{
    (void)state;
    /* U+0000 is valid UTF-8 but would cut the C string short. */
    check_norm_error("浙A\00012345", 10, CMN_EPARSE);
    check_norm_error("\0", 1, CMN_EPARSE);
}

static void test_normalize_too_long(void **state)
{
    char in[300];

    (void)state;
    check_norm("ABCDEFGHIJKL", "ABCDEFGHIJKL");
    check_norm_error("ABCDEFGHIJKLM", 13, CMN_ETOOBIG);
    /* Twelve three-byte characters fit CMN_PLATE_MAX, thirteen are too many characters. */
    check_norm("京津沪渝冀豫云辽黑湘皖鲁", "京津沪渝冀豫云辽黑湘皖鲁");
    check_norm_error("京津沪渝冀豫云辽黑湘皖鲁新", strlen("京津沪渝冀豫云辽黑湘皖鲁新"),
                     CMN_ETOOBIG);
    /* Separators do not count as characters ... */
    check_norm("A B C D E F G H I J K L", "ABCDEFGHIJKL");
    /* ... but the input is capped at 256 bytes whatever it holds. */
    memset(in, ' ', sizeof in);
    memcpy(in + 247, "浙A12345", 9);
    char out[CMN_PLATE_MAX];
    assert_int_equal(cmn_plate_normalize(in, 256, out, sizeof out), 9);
    assert_string_equal(out, "浙A12345");
    memset(in, ' ', sizeof in);
    memcpy(in + 248, "浙A12345", 9);
    check_norm_error(in, 257, CMN_ETOOBIG);
}

static void test_normalize_output_size(void **state)
{
    char out[CMN_PLATE_MAX];

    (void)state;
    /* "浙A12345" is 9 bytes and needs 10 with its NUL. */
    memset(out, 'x', sizeof out);
    assert_int_equal(cmn_plate_normalize("浙A12345", 9, out, 9), CMN_ETOOBIG);
    assert_int_equal(out[0], '\0');
    assert_int_equal(cmn_plate_normalize("浙A12345", 9, out, 10), 9);
    assert_string_equal(out, "浙A12345");
    memset(out, 'x', sizeof out);
    assert_int_equal(cmn_plate_normalize("浙A12345", 9, out, 0), CMN_ETOOBIG);
    assert_int_equal(out[0], 'x');
    assert_int_equal(cmn_plate_normalize("浙A12345", 9, NULL, 10), CMN_EINVAL);
    assert_int_equal(cmn_plate_normalize(NULL, 3, out, sizeof out), CMN_EINVAL);
    assert_int_equal(cmn_plate_normalize(NULL, 0, out, sizeof out), 0);
    assert_string_equal(out, "");
}

static void test_normalize_empty(void **state)
{
    (void)state;
    check_norm("", "");
    check_norm("  -\u00b7- \t", "");
}

/* ---- parse: valid kinds ---- */

static void test_parse_ordinary(void **state)
{
    cmn_plate_t p;

    (void)state;
    assert_int_equal(cmn_plate_parse("浙A12345", strlen("浙A12345"), &p), 0);
    assert_string_equal(p.text, "浙A12345");
    assert_int_equal(p.nchars, 7);
    assert_int_equal(p.kind, CMN_PLATE_ORDINARY);
    assert_string_equal(p.vclass, "small");
    assert_null(p.reason);
    check_valid("京AB0C1D", "京AB0C1D", CMN_PLATE_ORDINARY, "small");
    check_valid("粤Z12345", "粤Z12345", CMN_PLATE_ORDINARY, "small");
    check_valid("琼ZZZZZZ", "琼ZZZZZZ", CMN_PLATE_ORDINARY, "small");
}

static void test_parse_normalises_first(void **state)
{
    (void)state;
    check_valid(" 浙ａ·123-45 ", "浙A12345", CMN_PLATE_ORDINARY, "small");
    check_valid("浙Ａ１２３４５", "浙A12345", CMN_PLATE_ORDINARY, "small");
    check_valid("粤z·1234港", "粤Z1234港", CMN_PLATE_HONG_KONG, "small");
}

static void test_parse_new_energy(void **state)
{
    cmn_plate_t p;

    (void)state;
    assert_int_equal(cmn_plate_parse("浙AD12345", strlen("浙AD12345"), &p), 0);
    assert_int_equal(p.nchars, 8);
    assert_int_equal(p.kind, CMN_PLATE_NEW_ENERGY);
    assert_string_equal(p.vclass, "new_energy");
    /* Small: D/F, a letter or digit, four digits. */
    check_valid("浙AF12345", "浙AF12345", CMN_PLATE_NEW_ENERGY, "new_energy");
    check_valid("浙AFA1234", "浙AFA1234", CMN_PLATE_NEW_ENERGY, "new_energy");
    check_valid("粤BD12345", "粤BD12345", CMN_PLATE_NEW_ENERGY, "new_energy");
    /* Large: five digits, then D/F. */
    check_valid("浙A12345D", "浙A12345D", CMN_PLATE_NEW_ENERGY, "new_energy");
    check_valid("浙A12345F", "浙A12345F", CMN_PLATE_NEW_ENERGY, "new_energy");
}

static void test_parse_suffix_kinds(void **state)
{
    (void)state;
    check_valid("浙A1234学", "浙A1234学", CMN_PLATE_COACH, "small");
    check_valid("浙A1234挂", "浙A1234挂", CMN_PLATE_TRAILER, "large");
    check_valid("浙A1234警", "浙A1234警", CMN_PLATE_POLICE, "small");
    check_valid("粤Z1234港", "粤Z1234港", CMN_PLATE_HONG_KONG, "small");
    check_valid("粤ZA123澳", "粤ZA123澳", CMN_PLATE_MACAU, "small");
    check_valid("沪A1234领", "沪A1234领", CMN_PLATE_CONSULATE, "small");
}

static void test_parse_embassy(void **state)
{
    (void)state;
    check_valid("使014578", "使014578", CMN_PLATE_EMBASSY, "small");
    check_valid("使 014·578", "使014578", CMN_PLATE_EMBASSY, "small");
}

static void test_parse_other(void **state)
{
    cmn_plate_t p;

    (void)state;
    check_valid("AB123CD", "AB123CD", CMN_PLATE_OTHER, "small");
    /* Armed police: WJ, then the province, so the mainland rules do not apply. */
    check_valid("WJ浙12345", "WJ浙12345", CMN_PLATE_OTHER, "small");
    check_valid("wj 浙 1234x", "WJ浙1234X", CMN_PLATE_OTHER, "small");
    /* An ideograph that is not a province (泸, a misread 沪; 北, an old military code). */
    check_valid("泸A12345", "泸A12345", CMN_PLATE_OTHER, "small");
    check_valid("北K12345", "北K12345", CMN_PLATE_OTHER, "small");
    check_valid("泸A1234港", "泸A1234港", CMN_PLATE_OTHER, "small");
    /* Foreign plates may hold I and O. */
    check_valid("OI12", "OI12", CMN_PLATE_OTHER, "small");
    check_valid("12345", "12345", CMN_PLATE_OTHER, "small");
    /* Two to ten characters. */
    check_valid("7Q", "7Q", CMN_PLATE_OTHER, "small");
    check_valid("ABCDEFGH12", "ABCDEFGH12", CMN_PLATE_OTHER, "small");
    assert_int_equal(cmn_plate_parse("ABCDEFGH12", 10, &p), 0);
    assert_int_equal(p.nchars, 10);
}

/* ---- parse: rejections ---- */

static void test_parse_rejects_i_o(void **state)
{
    (void)state;
    check_rejected("浙A1O345", CMN_EINVAL, "letter I or O in the serial");
    check_rejected("浙A12I45", CMN_EINVAL, "letter I or O in the serial");
    check_rejected("浙AD1O234", CMN_EINVAL, "letter I or O in the serial");
    check_rejected("浙A12345O", CMN_EINVAL, "letter I or O in the serial");
    check_rejected("浙A1I34学", CMN_EINVAL, "letter I or O in the serial");
    check_rejected("粤ZO123港", CMN_EINVAL, "letter I or O in the serial");
    check_rejected("浙I12345", CMN_EINVAL, "letter I or O as the authority letter");
    check_rejected("浙o12345", CMN_EINVAL, "letter I or O as the authority letter");
    check_rejected("浙112345", CMN_EINVAL, "authority character is not a letter");
    check_rejected("浙浙12345", CMN_EINVAL, "authority character is not a letter");
}

static void test_parse_rejects_length(void **state)
{
    static const char *const mainland[] = {"浙", "京A", "浙A1234", "浙A1234567", "粤Z12345678"};

    (void)state;
    for (size_t i = 0; i < sizeof mainland / sizeof mainland[0]; i++)
        check_rejected(mainland[i], CMN_EINVAL,
                       "wrong length for a mainland plate (7 or 8 characters)");
    check_rejected("A", CMN_EINVAL, "wrong length for a plate (2 to 10 characters)");
    check_rejected("ABCDEFGHIJK", CMN_EINVAL, "wrong length for a plate (2 to 10 characters)");
    check_rejected("WJ浙123456789", CMN_EINVAL, "wrong length for a plate (2 to 10 characters)");
    check_rejected("ABCDEFGHIJKLM", CMN_ETOOBIG, "plate too long");
    check_rejected("浙A12345学", CMN_EINVAL, "wrong length for a suffix plate (7 characters)");
}

static void test_parse_rejects_new_energy(void **state)
{
    (void)state;
    check_rejected("浙A123456", CMN_EINVAL, "new-energy plate without D/F in position 3 or 8");
    check_rejected("浙AA12345", CMN_EINVAL, "new-energy plate without D/F in position 3 or 8");
    check_rejected("浙AD1234A", CMN_EINVAL, "small new-energy plate must end in 4 digits");
    check_rejected("浙AF1A234", CMN_EINVAL, "small new-energy plate must end in 4 digits");
    check_rejected("浙A1234AD", CMN_EINVAL, "large new-energy plate must start with 5 digits");
    check_rejected("浙AD123学4", CMN_EINVAL, "unexpected character in the serial");
}

static void test_parse_rejects_hong_kong_macau(void **state)
{
    (void)state;
    check_rejected("浙A1234港", CMN_EINVAL, "港/澳 plates are issued only under 粤Z");
    check_rejected("粤B1234港", CMN_EINVAL, "港/澳 plates are issued only under 粤Z");
    check_rejected("粤B1234澳", CMN_EINVAL, "港/澳 plates are issued only under 粤Z");
    check_rejected("京Z1234澳", CMN_EINVAL, "港/澳 plates are issued only under 粤Z");
}

static void test_parse_rejects_characters(void **state)
{
    (void)state;
    check_rejected("浙A12*45", CMN_EINVAL, "unexpected character");
    check_rejected("浙A12345!", CMN_EINVAL, "unexpected character");
    check_rejected("AB_123", CMN_EINVAL, "unexpected character");
    check_rejected("A?", CMN_EINVAL, "unexpected character");
    check_rejected("\u3042A12345", CMN_EINVAL, "unexpected character");      /* hiragana */
    check_rejected("浙A1234\U0001f697", CMN_EINVAL, "unexpected character"); /* emoji */
    check_rejected("\u200b浙A12345", CMN_EINVAL, "unexpected character");    /* zero-width space */
    check_rejected("浙A\00112345", CMN_EINVAL, "unexpected character");
    check_rejected("浙A1234试", CMN_EINVAL, "unknown suffix character");
    check_rejected("浙A12学45", CMN_EINVAL, "unexpected character in the serial");
    check_rejected("使01457A", CMN_EINVAL, "embassy plate must be 使 and 6 digits");
    check_rejected("使01457", CMN_EINVAL, "embassy plate must be 使 and 6 digits");
    check_rejected("使0145789", CMN_EINVAL, "embassy plate must be 使 and 6 digits");
    check_rejected("使", CMN_EINVAL, "embassy plate must be 使 and 6 digits");
}

static void test_parse_keeps_text_of_invalid(void **state)
{
    cmn_plate_t p;

    (void)state;
    assert_int_equal(cmn_plate_parse("浙a1o345", strlen("浙a1o345"), &p), CMN_EINVAL);
    assert_string_equal(p.text, "浙A1O345");
    assert_int_equal(p.nchars, 7);
    assert_null(p.vclass);
    assert_string_equal(p.reason, "letter I or O in the serial");
}

static void test_parse_unreadable(void **state)
{
    static const struct {
        const char *in, *text, *reason;
    } cases[] = {
        {"无车牌", "无车牌", "no-plate sentinel"},
        {"无牌", "无牌", "no-plate sentinel"},
        {"无牌车", "无牌车", "no-plate sentinel"},
        {"未识别", "未识别", "no-plate sentinel"},
        {"未知", "未知", "no-plate sentinel"},
        {"无匹配", "无匹配", "no-plate sentinel"},
        {"无", "无", "no-plate sentinel"},
        {"空", "空", "no-plate sentinel"},
        {"车牌", "车牌", "no-plate sentinel"},
        {"无 车·牌", "无车牌", "no-plate sentinel"},
        {"UNKNOWN", "UNKNOWN", "no-plate sentinel"},
        {"unknown", "UNKNOWN", "no-plate sentinel"},
        {"Ｕｎｋｎｏｗｎ", "UNKNOWN", "no-plate sentinel"},
        {"none", "NONE", "no-plate sentinel"},
        {"NULL", "NULL", "no-plate sentinel"},
        {"N/A", "N/A", "no-plate sentinel"},
        {"n/a", "N/A", "no-plate sentinel"},
        {"NOPLATE", "NOPLATE", "no-plate sentinel"},
        {"NO PLATE", "NOPLATE", "no-plate sentinel"},
        {"No-Plate", "NOPLATE", "no-plate sentinel"},
        {"...", "...", "no-plate sentinel"},
        {"\u2026", "...", "no-plate sentinel"}, /* ellipsis, "..." after NFKC */
        {".", ".", "only wildcard characters"},
        {"*******", "*******", "only wildcard characters"},
        {"?#*.", "?#*.", "only wildcard characters"},
        {"＊＊＊", "***", "only wildcard characters"},
        {"# # #", "###", "only wildcard characters"},
        {"", "", "empty read"},
        {"   ", "", "empty read"},
        {"-\u00b7-", "", "empty read"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cmn_plate_t p;
        assert_int_equal(cmn_plate_parse(cases[i].in, strlen(cases[i].in), &p), CMN_EUNREADABLE);
        assert_string_equal(p.text, cases[i].text);
        assert_null(p.vclass);
        assert_string_equal(p.reason, cases[i].reason);
    }
}

static void test_parse_malformed(void **state)
{
    cmn_plate_t p;

    (void)state;
    memset(&p, 'x', sizeof p);
    assert_int_equal(cmn_plate_parse("\346\265A12345", 7, &p), CMN_EPARSE);
    assert_string_equal(p.text, "");
    assert_int_equal(p.nchars, 0);
    assert_null(p.vclass);
    assert_string_equal(p.reason, "not valid UTF-8");
    assert_int_equal(cmn_plate_parse("A\0B", 3, &p), CMN_EPARSE);
    assert_string_equal(p.reason, "NUL character in the text");
    assert_int_equal(cmn_plate_parse("京津沪渝冀豫云辽黑湘皖鲁新", 39, &p), CMN_ETOOBIG);
    assert_string_equal(p.text, "");
    assert_string_equal(p.reason, "plate too long");
    assert_int_equal(cmn_plate_parse("浙A12345", 9, NULL), CMN_EINVAL);
    assert_int_equal(cmn_plate_parse(NULL, 1, &p), CMN_EINVAL);
    assert_string_equal(p.reason, "no input");
}

/* ---- classes and names ---- */

static void test_class_mapping(void **state)
{
    static const struct {
        const char *plate;
        cmn_plate_kind_t kind;
        const char *vclass;
    } cases[] = {
        {"浙A12345", CMN_PLATE_ORDINARY, "small"},
        {"浙AD12345", CMN_PLATE_NEW_ENERGY, "new_energy"},
        {"浙A12345D", CMN_PLATE_NEW_ENERGY, "new_energy"},
        {"浙A1234学", CMN_PLATE_COACH, "small"},
        {"浙A1234挂", CMN_PLATE_TRAILER, "large"},
        {"浙A1234警", CMN_PLATE_POLICE, "small"},
        {"粤Z1234港", CMN_PLATE_HONG_KONG, "small"},
        {"粤Z1234澳", CMN_PLATE_MACAU, "small"},
        {"沪A1234领", CMN_PLATE_CONSULATE, "small"},
        {"使014578", CMN_PLATE_EMBASSY, "small"},
        {"AB123CD", CMN_PLATE_OTHER, "small"},
    };
    unsigned seen = 0;

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        check_valid(cases[i].plate, cases[i].plate, cases[i].kind, cases[i].vclass);
        seen |= 1u << cases[i].kind;
    }
    /* Every kind of the enum has a case above. */
    assert_int_equal(seen, (1u << (CMN_PLATE_OTHER + 1)) - 1);
}

static void test_kind_names(void **state)
{
    (void)state;
    assert_string_equal(cmn_plate_kind_name(CMN_PLATE_ORDINARY), "ordinary");
    assert_string_equal(cmn_plate_kind_name(CMN_PLATE_NEW_ENERGY), "new_energy");
    assert_string_equal(cmn_plate_kind_name(CMN_PLATE_COACH), "coach");
    assert_string_equal(cmn_plate_kind_name(CMN_PLATE_TRAILER), "trailer");
    assert_string_equal(cmn_plate_kind_name(CMN_PLATE_POLICE), "police");
    assert_string_equal(cmn_plate_kind_name(CMN_PLATE_HONG_KONG), "hong_kong");
    assert_string_equal(cmn_plate_kind_name(CMN_PLATE_MACAU), "macau");
    assert_string_equal(cmn_plate_kind_name(CMN_PLATE_CONSULATE), "consulate");
    assert_string_equal(cmn_plate_kind_name(CMN_PLATE_EMBASSY), "embassy");
    assert_string_equal(cmn_plate_kind_name(CMN_PLATE_OTHER), "other");
    assert_string_equal(cmn_plate_kind_name((cmn_plate_kind_t)(CMN_PLATE_OTHER + 1)), "unknown");
    assert_string_equal(cmn_plate_kind_name((cmn_plate_kind_t)-1), "unknown");
}

/* ---- fold keys ---- */

static void test_fold_key(void **state)
{
    (void)state;
    check_fold("浙A12345", 0, "浙A123A5");
    check_fold("浙A1234S", 0, "浙A123A5");
    check_fold("浙AB8D0Q", 0, "浙A88000");
    check_fold("ODQ0", 0, "0000");
    check_fold("8B", 0, "88");
    check_fold("1IT", 0, "111");
    check_fold("5S2Z6GA4", 0, "552266AA");
    check_fold("CEFHJKLMNPRUVWXY379", 0, "CEFHJKLMNPRUVWXY379");
    check_fold("粤Z1234港", 0, "粤2123A港");
    check_fold("", 0, "");
}

static void test_fold_key_province(void **state)
{
    (void)state;
    check_fold("浙A12345", 1, "*A123A5");
    check_fold("苏A1234S", 1, "*A123A5");
    check_fold("使014578", 1, "*01A578");
    /* Only a leading non-ASCII character is the province. */
    check_fold("WJ浙12345", 1, "WJ浙123A5");
    check_fold("AB123CD", 1, "A8123C0");
    check_fold("\377A1", 1, "*A1");
    check_fold("", 1, "");
}

static void test_fold_key_output_size(void **state)
{
    char out[CMN_PLATE_MAX];

    (void)state;
    memset(out, 'x', sizeof out);
    /* "浙A123A5" is 9 bytes: 10 fit, 9 do not. */
    assert_int_equal(cmn_plate_fold_key("浙A12345", 0, out, 9), CMN_ETOOBIG);
    assert_int_equal(out[0], '\0');
    assert_int_equal(cmn_plate_fold_key("浙A12345", 0, out, 10), 9);
    assert_string_equal(out, "浙A123A5");
    /* With the province folded, 7 bytes plus the NUL. */
    assert_int_equal(cmn_plate_fold_key("浙A12345", 1, out, 7), CMN_ETOOBIG);
    assert_int_equal(cmn_plate_fold_key("浙A12345", 1, out, 8), 7);
    assert_string_equal(out, "*A123A5");
    memset(out, 'x', sizeof out);
    assert_int_equal(cmn_plate_fold_key("浙A12345", 0, out, 0), CMN_ETOOBIG);
    assert_int_equal(out[0], 'x');
    assert_int_equal(cmn_plate_fold_key("", 0, out, 1), 0);
    assert_string_equal(out, "");
    assert_int_equal(cmn_plate_fold_key(NULL, 0, out, sizeof out), CMN_EINVAL);
    assert_string_equal(out, "");
    assert_int_equal(cmn_plate_fold_key("浙A12345", 0, NULL, 10), CMN_EINVAL);
}

/* ---- compare ---- */

static void check_compare(const char *a, const char *b, cmn_plate_match_t want)
{
    char ka[CMN_PLATE_MAX], kb[CMN_PLATE_MAX];

    assert_int_equal(cmn_plate_compare(a, b), want);
    assert_int_equal(cmn_plate_compare(b, a), want);
    /* The fold keys find the same candidates the comparison accepts. */
    assert_true(cmn_plate_fold_key(a, 0, ka, sizeof ka) >= 0);
    assert_true(cmn_plate_fold_key(b, 0, kb, sizeof kb) >= 0);
    assert_int_equal(strcmp(ka, kb) == 0,
                     want == CMN_PLATE_MATCH_EXACT || want == CMN_PLATE_MATCH_CONFUSABLE);
    assert_true(cmn_plate_fold_key(a, 1, ka, sizeof ka) >= 0);
    assert_true(cmn_plate_fold_key(b, 1, kb, sizeof kb) >= 0);
    assert_int_equal(strcmp(ka, kb) == 0, want != CMN_PLATE_MATCH_NONE);
}

static void test_compare_exact(void **state)
{
    (void)state;
    check_compare("浙A12345", "浙A12345", CMN_PLATE_MATCH_EXACT);
    check_compare("WJ浙12345", "WJ浙12345", CMN_PLATE_MATCH_EXACT);
    check_compare("", "", CMN_PLATE_MATCH_EXACT);
}

static void test_compare_confusable(void **state)
{
    (void)state;
    check_compare("浙A12345", "浙A1234S", CMN_PLATE_MATCH_CONFUSABLE);
    check_compare("浙AB8D0Q", "浙A88000", CMN_PLATE_MATCH_CONFUSABLE);
    check_compare("浙AB8D0Q", "浙A8BQ0D", CMN_PLATE_MATCH_CONFUSABLE);
    check_compare("浙A12345", "浙412345", CMN_PLATE_MATCH_CONFUSABLE);
    check_compare("浙A12345", "浙AT2345", CMN_PLATE_MATCH_CONFUSABLE);
    check_compare("浙A12345", "浙AIZ345", CMN_PLATE_MATCH_CONFUSABLE);
    check_compare("浙AG6666", "浙A6G6G6", CMN_PLATE_MATCH_CONFUSABLE);
    check_compare("粤Z1234港", "粤21234港", CMN_PLATE_MATCH_CONFUSABLE);
}

static void test_compare_province(void **state)
{
    (void)state;
    check_compare("苏A12345", "浙A12345", CMN_PLATE_MATCH_PROVINCE);
    check_compare("沪A12345", "泸A12345", CMN_PLATE_MATCH_PROVINCE);
    /* A province difference plus confusable serial characters is still a province match. */
    check_compare("苏A1234S", "浙A12345", CMN_PLATE_MATCH_PROVINCE);
    check_compare("苏AB8D0Q", "浙A88000", CMN_PLATE_MATCH_PROVINCE);
    check_compare("京AD12345", "津A0I2345", CMN_PLATE_MATCH_PROVINCE);
}

static void test_compare_none(void **state)
{
    (void)state;
    check_compare("浙A12345", "浙A12346", CMN_PLATE_MATCH_NONE);
    check_compare("浙A12345", "浙B12345", CMN_PLATE_MATCH_NONE);
    check_compare("苏A12345", "浙A12346", CMN_PLATE_MATCH_NONE);
    check_compare("浙A1234学", "浙A1234警", CMN_PLATE_MATCH_NONE);
    /* Only the first character is the province. */
    check_compare("WJ浙12345", "WJ苏12345", CMN_PLATE_MATCH_NONE);
    check_compare("浙A12345", "AA12345", CMN_PLATE_MATCH_NONE);
    /* 7 never matches 8, even when one is the other plus a character. */
    check_compare("浙A12345", "浙AD12345", CMN_PLATE_MATCH_NONE);
    check_compare("浙A12345", "浙A123450", CMN_PLATE_MATCH_NONE);
    check_compare("浙A12345", "浙A1234", CMN_PLATE_MATCH_NONE);
    check_compare("浙A12345", "", CMN_PLATE_MATCH_NONE);
}

static void test_compare_null_and_garbage(void **state)
{
    (void)state;
    assert_int_equal(cmn_plate_compare(NULL, "浙A12345"), CMN_PLATE_MATCH_NONE);
    assert_int_equal(cmn_plate_compare("浙A12345", NULL), CMN_PLATE_MATCH_NONE);
    assert_int_equal(cmn_plate_compare(NULL, NULL), CMN_PLATE_MATCH_NONE);
    assert_int_equal(cmn_plate_compare("\377A12345", "\376A12345"), CMN_PLATE_MATCH_NONE);
    assert_int_equal(cmn_plate_compare("\377A12345", "\377A1234S"), CMN_PLATE_MATCH_CONFUSABLE);
}

/* ---- mask ---- */

static void test_mask(void **state)
{
    (void)state;
    check_mask("浙A12345", "浙A1***5");
    check_mask("浙AD12345", "浙AD****5");
    check_mask("使014578", "使01***8");
    check_mask("粤Z1234港", "粤Z1***港");
    check_mask("ABCDE", "ABC*E");
    check_mask("ABCDEFGHIJKLMNOP", "ABC************P");
}

static void test_mask_short(void **state)
{
    (void)state;
    check_mask("ABCD", "A***");
    check_mask("无车牌", "无**");
    check_mask("AB", "A*");
    check_mask("A", "A");
}

static void test_mask_null_and_empty(void **state)
{
    struct fixture *f = *state;

    check_mask("", "");
    cmn_plate_mask(NULL, f->buf, 8);
    assert_string_equal(f->buf, "");
    assert_poisoned(f->buf + 1, sizeof f->buf - 1);
    /* Nothing to write into: the call must not touch anything. */
    cmn_plate_mask("浙A12345", NULL, 8);
    cmn_plate_mask("浙A12345", f->buf + 10, 0);
    assert_poisoned(f->buf + 1, sizeof f->buf - 1);
}

static void test_mask_truncation(void **state)
{
    static const struct {
        size_t outsz;
        const char *want;
    } cases[] = {
        /* "浙A1***5" is 9 bytes; truncation never splits 浙 (3 bytes). */
        {1, ""},     {2, ""},       {3, ""},        {4, "浙"},        {5, "浙A"},
        {6, "浙A1"}, {8, "浙A1**"}, {9, "浙A1***"}, {10, "浙A1***5"}, {64, "浙A1***5"},
    };
    struct fixture *f = *state;

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memset(f->buf, POISON, sizeof f->buf);
        cmn_plate_mask("浙A12345", f->buf, cases[i].outsz);
        assert_string_equal(f->buf, cases[i].want);
        assert_poisoned(f->buf + cases[i].outsz, sizeof f->buf - cases[i].outsz);
    }
}

static void test_mask_unsafe_characters(void **state)
{
    (void)state;
    /* Ill-formed bytes and controls that stay visible become '?', masked ones '*'. */
    check_mask("A\377BCD\n", "A?B**?");
    check_mask("\x1b[31m", "?[3*m");
    check_mask("\u202eABCDE", "?AB**E"); /* right-to-left override */
    check_mask("\xe6\xb5", "?");
    check_mask("A B", "A**");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normalize_full_width),
        cmocka_unit_test(test_normalize_separators),
        cmocka_unit_test(test_normalize_upper_case),
        cmocka_unit_test(test_normalize_is_idempotent),
        cmocka_unit_test(test_normalize_uses_len),
        cmocka_unit_test(test_normalize_invalid_utf8),
        cmocka_unit_test(test_normalize_nul),
        cmocka_unit_test(test_normalize_too_long),
        cmocka_unit_test(test_normalize_output_size),
        cmocka_unit_test(test_normalize_empty),
        cmocka_unit_test(test_parse_ordinary),
        cmocka_unit_test(test_parse_normalises_first),
        cmocka_unit_test(test_parse_new_energy),
        cmocka_unit_test(test_parse_suffix_kinds),
        cmocka_unit_test(test_parse_embassy),
        cmocka_unit_test(test_parse_other),
        cmocka_unit_test(test_parse_rejects_i_o),
        cmocka_unit_test(test_parse_rejects_length),
        cmocka_unit_test(test_parse_rejects_new_energy),
        cmocka_unit_test(test_parse_rejects_hong_kong_macau),
        cmocka_unit_test(test_parse_rejects_characters),
        cmocka_unit_test(test_parse_keeps_text_of_invalid),
        cmocka_unit_test(test_parse_unreadable),
        cmocka_unit_test(test_parse_malformed),
        cmocka_unit_test(test_class_mapping),
        cmocka_unit_test(test_kind_names),
        cmocka_unit_test(test_fold_key),
        cmocka_unit_test(test_fold_key_province),
        cmocka_unit_test(test_fold_key_output_size),
        cmocka_unit_test(test_compare_exact),
        cmocka_unit_test(test_compare_confusable),
        cmocka_unit_test(test_compare_province),
        cmocka_unit_test(test_compare_none),
        cmocka_unit_test(test_compare_null_and_garbage),
        cmocka_unit_test(test_mask),
        cmocka_unit_test(test_mask_short),
        cmocka_unit_test_setup_teardown(test_mask_null_and_empty, poison_setup, poison_teardown),
        cmocka_unit_test_setup_teardown(test_mask_truncation, poison_setup, poison_teardown),
        cmocka_unit_test(test_mask_unsafe_characters),
    };

    return cmocka_run_group_tests_name("common.plate", tests, group_setup, group_teardown);
}
