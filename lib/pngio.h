/*
 * pngio.h - write 8-bit RGB pictures as PNG files through Debian's libpng.
 * (Named pngio, not png: a lib/png.h would shadow libpng's <png.h>.)
 * The only file including <png.h>.
 *
 *     if (png_write_rgb("slice.png", rgb, w, h, "ct-view ...") != 0)
 *         ct_die("%s", ct_lasterr());
 *
 * The file is written atomically (ct_atomic_*: temp file + rename), so a
 * failed write leaves nothing behind; "-" writes to stdout (refused when it
 * is a terminal).
 */
#ifndef CT_PNGIO_H
#define CT_PNGIO_H

#include <stdint.h>

/* rgb: h rows of w pixels, 3 bytes each (R, G, B), top row first.
 * software: stored as the tEXt "Software" chunk when not NULL.  0, or -1 + lasterr. */
int png_write_rgb(const char *path, const uint8_t *rgb, int w, int h, const char *software);

#endif
