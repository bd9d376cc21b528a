# cmake -DIN=file -DOUT=file.cc -DNAME=symbol -P embed.cmake: writes the bytes of IN as a
# NUL-terminated char array dsv3::server::NAME (the web page, embedded in dsv3 serve).
file(READ ${IN} hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "'\\\\x\\1'," bytes "${hex}")
file(WRITE ${OUT}.tmp
     "// Generated from ${IN} by embed.cmake. Do not edit.\n"
     "namespace dsv3::server {\nextern const char ${NAME}[];\nconst char ${NAME}[] = {${bytes}0};\n}\n")
file(RENAME ${OUT}.tmp ${OUT})
