# cmake -DGZIP=gzip -DIN=file -DOUT=file.gz -P GreyGzip.cmake: gzip -9n (no name, no time
# stamp: reproducible bytes) into OUT.
get_filename_component(dir "${OUT}" DIRECTORY)
file(MAKE_DIRECTORY "${dir}")
execute_process(COMMAND "${GZIP}" -9 -n -c "${IN}" OUTPUT_FILE "${OUT}.tmp" RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  file(REMOVE "${OUT}.tmp")
  message(FATAL_ERROR "gzip ${IN} failed: ${rc}")
endif()
file(RENAME "${OUT}.tmp" "${OUT}")
