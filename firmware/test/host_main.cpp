#include <stdio.h>

#include "unit.h"

void ut::out_char(char c) {
    putchar(c);
}

int main() {
    return ut::run_all() == 0 ? 0 : 1;
}
