#include "cmn/err.h"

#include <uv.h>

const char *cmn_strerror(int rc)
{
    switch (rc) {
    case 0:
        return "success";
#define XX(code, text)                                                                             \
    case CMN_E##code:                                                                              \
        return text;
        CMN_ERR_MAP(XX)
#undef XX
    default:
        break;
    }
    if (rc < 0 && rc > CMN_ERR_BASE_)
        return uv_strerror(rc);
    return "unknown error";
}

const char *cmn_errname(int rc)
{
    switch (rc) {
    case 0:
        return "OK";
#define XX(code, _)                                                                                \
    case CMN_E##code:                                                                              \
        return "CMN_E" #code;
        CMN_ERR_MAP(XX)
#undef XX
    default:
        break;
    }
    if (rc < 0 && rc > CMN_ERR_BASE_)
        return uv_err_name(rc);
    return "UNKNOWN";
}
