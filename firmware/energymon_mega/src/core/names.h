// The contract's rule for device and sensor names, checkable at compile time so a bad name in
// config.h stops the build instead of being refused by the collector: 1-64 characters (UTF-8),
// no control characters, no backslash, no leading or trailing space.
#ifndef EM_NAMES_H
#define EM_NAMES_H

namespace em {

constexpr bool name_byte_ok(unsigned char c) {
    return c >= 0x20 && c != 0x7F && c != '\\';
}

// Characters, not bytes: UTF-8 continuation bytes (10xxxxxx) do not start a character.
constexpr unsigned name_chars(const char* s, unsigned i = 0) {
    return s[i] == 0 ? 0
                     : ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80 ? 1u : 0u) +
                           name_chars(s, i + 1);
}

constexpr bool name_bytes_ok(const char* s, unsigned i = 0) {
    return s[i] == 0 || (name_byte_ok(static_cast<unsigned char>(s[i])) && name_bytes_ok(s, i + 1));
}

constexpr unsigned name_bytes(const char* s, unsigned i = 0) {
    return s[i] == 0 ? i : name_bytes(s, i + 1);
}

constexpr bool name_valid(const char* s) {
    return name_chars(s) >= 1 && name_chars(s) <= 64 && name_bytes_ok(s) && s[0] != ' ' &&
           s[name_bytes(s) - 1] != ' ';
}

}  // namespace em

#endif
