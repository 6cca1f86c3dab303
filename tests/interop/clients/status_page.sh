# shellcheck shell=bash
# status-page: the status page in a real browser (Debian's chromium, headless, driven by
# playwright-core from npm: browser/status_page.mjs), on the suite's pantry's proxy port, which
# serves it to loopback clients. skopeo pulls an image twice (the second
# pull is answered from the cache), then curl fetches a 3 MiB blob through pantry from a CDN path
# that nginx throttles (/slow/…, 256 KiB/s), and while it runs chromium loads `/`.
#   page-dom:      the DOM names the pulled repository among the most served ones and shows a hit
#                  ratio above 0, after the page's script swapped its live part in place (no
#                  reload); a screenshot is kept in $WORK/artifacts/status-page.png
#   page-progress: the running fetch is there, with its digest and a progress bar
#   page-nojs:     with JavaScript disabled the page still shows the numbers and the repository

SLOW_BLOB_BYTES=$((3 * 1024 * 1024))

BROWSER_DIR=$INTEROP_DIR/browser

client_status-page() {
  local r=status-page dir=$WORK/clients/status-page url=http://$PANTRY_ADDR/
  mkdir -p "$dir" "$WORK/artifacts"
  if [ ! -d "$BROWSER_DIR/node_modules/playwright-core" ] || ! command -v chromium >/dev/null; then
    fail_rest "$r" "chromium or playwright-core is not installed (the suite installs both)"
    return
  fi
  skopeo_setup
  row_pull skopeo anon pantry none
  row_pull skopeo anon pantry none   # answered from the cache: the hit ratio goes above 0
  [ "$ROW_RC" -eq 0 ] || log "status-page: the second skopeo pull failed: $(failure_msg "$ROW_LOG")"
  # a blob only the throttled CDN path serves (nginx redirects /v2/slow/*/blobs/* there)
  local hex storage=$WORK/storage/anon/docker/registry/v2/blobs/sha256
  head -c "$SLOW_BLOB_BYTES" /dev/urandom >"$dir/slow.bin"
  hex=$(sha256sum "$dir/slow.bin" | cut -d' ' -f1)
  mkdir -p "$storage/${hex:0:2}/$hex" && cp "$dir/slow.bin" "$storage/${hex:0:2}/$hex/data"
  proxy_env curl -s --cacert "$(trust_file pantry)" -o "$dir/slow.out" \
    "https://$REG_HOST:$PORT_ANON/v2/slow/blob/blobs/sha256:$hex" &
  local fetch=$! end=$((SECONDS + 15))
  until curl -s "$url" | grep -q "sha256:$hex" || [ "$SECONDS" -ge "$end" ]; do sleep 0.2; done
  timeout 90 node "$BROWSER_DIR/status_page.mjs" "$url" "$WORK/artifacts/status-page.png" \
    >"$dir/browser.json" 2>"$dir/browser.log"
  local rc=$?
  wait "$fetch"
  "$PY" - "$dir/browser.json" "$dir" <<'EOF_PY'
import json, sys
result = json.load(open(sys.argv[1]))
open(sys.argv[2] + "/dom.html", "w").write(result["js"]["html"])
open(sys.argv[2] + "/nojs.html", "w").write(result["nojs"]["html"])
open(sys.argv[2] + "/facts", "w").write("%s %s %s\n" % (result["js"]["updated"], result["js"]["kept_window"],
    ",".join(str(v) for v in result["js"]["progress"]) or "-"))
EOF_PY
  [ $rc -eq 0 ] && [ -s "$dir/facts" ] || { fail_rest "$r" "the browser run failed (rc $rc): $(tail_msg "$dir/browser.log" 3)"; return; }
  local updated kept bars repository=$REG_HOST:$PORT_ANON/$(repo_of anon skopeo) ratio
  read -r updated kept bars <"$dir/facts"
  ratio=$(page_ratio "$dir/dom.html")
  if grep -q "<td>$repository</td>" "$dir/dom.html" && awk "BEGIN { exit !(${ratio:-0} > 0) }" \
    && [ "$updated" = True ] && [ "$kept" = True ]; then
    pass "$r" page-dom "the DOM names $repository and a hit ratio of $ratio %; the live part was swapped in place; screenshot artifacts/status-page.png"
  else
    fail "$r" page-dom "repository $repository '$(grep -c "<td>$repository</td>" "$dir/dom.html")', hit ratio '$ratio', swapped '$updated', same window '$kept'"
  fi
  if grep -q "sha256:$hex" "$dir/dom.html" && [ "$bars" != - ]; then
    pass "$r" page-progress "the running fetch of sha256:${hex:0:12}… is shown with progress bars at $bars %"
  else
    fail "$r" page-progress "no fetch of sha256:${hex:0:12}… with a progress bar in the DOM (bars: $bars)"
  fi
  ratio=$(page_ratio "$dir/nojs.html")
  if grep -q "<td>$repository</td>" "$dir/nojs.html" && awk "BEGIN { exit !(${ratio:-0} > 0) }"; then
    pass "$r" page-nojs "with JavaScript disabled the page shows $repository and a hit ratio of $ratio %"
  else
    fail "$r" page-nojs "the page without JavaScript lacks the repository or the hit ratio (got '$ratio')"
  fi
}

page_ratio() { # page_ratio HTML : the since-start hit ratio's number, e.g. 62.5
  grep -o '<td id="hit-ratio">[0-9.]*' "$1" | grep -o '[0-9.]*$' | head -1
}
