# Warnings are errors on our own code only; third-party headers come in as SYSTEM includes.
function(portcullis_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor
                                           -Wold-style-cast -Wcast-align -Wunused -Woverloaded-virtual
                                           -Wconversion -Wno-sign-conversion -Werror)
endfunction()
