# Shared rules: a plugin directory sets PLUGIN (the .so name without .so)
# and SRCS, then includes this file.
INCLUDE ?= $(dir $(lastword $(MAKEFILE_LIST)))../native/include
CC ?= cc
CFLAGS ?= -O2 -g
CFLAGS += -Wall -Wextra -Wno-unused-parameter -fPIC -I$(INCLUDE)

all: $(PLUGIN).so

$(PLUGIN).so: $(SRCS) $(INCLUDE)/criu-plugin.h $(INCLUDE)/criu-log.h
	$(CC) $(CFLAGS) -shared -o $@ $(SRCS) $(LDFLAGS)

clean:
	rm -f $(PLUGIN).so

.PHONY: all clean
