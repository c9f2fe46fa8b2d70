# spark-executor — build, test, run.
#
#   make            the binary (./spark-executor)
#   make test       unit + black-box tests, then again under ASan/UBSan
#   make run        the service with demo tenants (installs what is missing)
#   make bench      throughput against the bare libevent baseline and the
#                   Node.js service it replaces
#   make image-local  a runtime image built with buildah from the binary
#   make static     a fully static binary (Alpine/musl build stage)

VERSION  := $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
PKGS     := libevent jansson openssl hiredis libcurl
CC       ?= cc
CFLAGS   ?= -O2 -g
WARNINGS := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
            -Wmissing-prototypes -Wformat=2
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARNINGS) $(CFLAGS) \
             -DSPARK_VERSION='"$(VERSION)"' $(shell pkg-config --cflags $(PKGS))
LDLIBS   ?= $(shell pkg-config --libs $(PKGS)) -lm

SAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer \
             -fno-sanitize-recover=undefined

SHARED_SRC := shared/log.c shared/config.c shared/tenants.c shared/channel.c \
              shared/clock.c shared/gcra.c shared/localquota.c \
              shared/stats.c shared/tally.c
WORKER_SRC := worker/worker.c worker/http.c worker/routes.c worker/quota.c \
              worker/upstream.c worker/exchange.c
SUP_SRC    := supervisor/master.c supervisor/workers.c supervisor/admin.c \
              supervisor/cpus.c supervisor/metrics.c
MAIN_SRC   := supervisor/main.c
LIB_SRC    := $(SHARED_SRC) $(WORKER_SRC) $(SUP_SRC)

UNIT_TESTS := check_config check_tenants check_http check_cpus check_gcra \
              check_clock check_stats check_quota check_exchange

BUILD      ?= build
OBJ        := $(LIB_SRC:%.c=$(BUILD)/%.o)

.PHONY: all deps test test-unit test-blackbox test-san test-deploy \
        test-image image-local run bench static clean

all: spark-executor

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

spark-executor: $(OBJ) $(BUILD)/supervisor/main.o
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/tests/%: tests/%.c $(OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(shell pkg-config --cflags check) $< $(OBJ) \
	    $(LDLIBS) $(shell pkg-config --libs check) -o $@

deps:
	@scripts/install-deps

test: deps
	$(MAKE) test-unit test-blackbox
	$(MAKE) test-san
	$(MAKE) test-deploy
	$(MAKE) test-image

test-unit: $(UNIT_TESTS:%=$(BUILD)/tests/%)
	@set -e; for t in $^; do echo "== $$t"; CK_FORK=yes $$t; done

# The test exchange (Binance-compatible), upstream of tests and make run.
EXCHANGE   := $(BUILD)/tests/exchange

$(EXCHANGE): tests/exchange/exchange.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $< $(shell pkg-config --libs libevent jansson openssl) \
	    -o $@

test-blackbox: spark-executor $(EXCHANGE)
	python3 tests/blackbox.py --binary ./spark-executor --exchange $(EXCHANGE)
	python3 tests/exchange/check.py --binary $(EXCHANGE)

# The same tests against a sanitizer build, in its own build tree.
test-san:
	$(MAKE) BUILD=build/san CFLAGS="$(SAN_FLAGS)" build/san/spark-executor \
	    $(UNIT_TESTS:%=build/san/tests/%)
	@set -e; for t in $(UNIT_TESTS); do echo "== san $$t"; \
	    CK_FORK=yes build/san/tests/$$t; done
	$(MAKE) BUILD=build/san CFLAGS="$(SAN_FLAGS)" build/san/tests/exchange
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    python3 tests/blackbox.py --binary build/san/spark-executor \
	    --exchange build/san/tests/exchange --sanitized

# Manifests against the Kubernetes schemas, the Dockerfile lint, and the
# operator scripts (kubectl ones in --dry-run).
test-deploy:
	tests/k8s/run.sh
	tests/docker/lint.sh
	tests/scripts/run.sh

# A runtime image FROM scratch with buildah (no Docker engine needed): the
# local binary, the shared libraries it links, user 65532, no shell.
image-local: spark-executor
	scripts/image-local ./spark-executor

test-image: spark-executor
	tests/image/run.sh

# The binary of another build tree (build/san, build/static).
$(BUILD)/spark-executor: $(OBJ) $(BUILD)/supervisor/main.o
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) $^ $(LDLIBS) -o $@

run: deps spark-executor $(EXCHANGE)
	@scripts/run-local

bench: deps spark-executor
	@scripts/bench --node

static:
	$(MAKE) spark-executor LDFLAGS="-static" \
	    LDLIBS="$$(pkg-config --static --libs $(PKGS)) -lm"

clean:
	rm -rf build spark-executor

-include $(OBJ:.o=.d) $(BUILD)/supervisor/main.d
