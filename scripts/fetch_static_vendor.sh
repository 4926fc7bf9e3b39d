#!/usr/bin/env bash
# Browser libraries the console serves as its own static files (no CDN): fetched from the npm registry at a pinned
# version, checked against the registry's sha512 integrity, unpacked into static_vendor/ (gitignored; served as
# static "vendor/..."). Run by `make install`.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=static_vendor

# name version integrity file-in-package target
packages=(
  "chart.js 4.5.1 sha512-GIjfiT9dbmHRiYi6Nl2yFCq7kkwdkp1W/lp2J99rX0yo9tgJGn3lKQATztIjb5tVtevcBtIdICNWqlq5+E8/Pw== dist/chart.umd.min.js chartjs/chart.umd.min.js"
)

for entry in "${packages[@]}"; do
  read -r name version integrity file target <<<"$entry"
  [ -s "$dest/$target" ] && grep -q "$version" "$dest/$target.version" 2>/dev/null && continue
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  tarball="$work/$name-$version.tgz"
  if command -v npm >/dev/null; then
    (cd "$work" && npm pack --silent "$name@$version" >/dev/null)
    tarball=$(ls "$work"/*.tgz)
  else
    curl -fsSL "https://registry.npmjs.org/$name/-/$name-$version.tgz" -o "$tarball"
  fi
  actual="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
  if [ "$actual" != "$integrity" ]; then
    echo "$name $version: the tarball's integrity $actual is not the pinned $integrity; refusing it." >&2
    exit 1
  fi
  mkdir -p "$dest/$(dirname "$target")"
  tar xzf "$tarball" -C "$work" "package/$file" package/LICENSE.md
  cp "$work/package/$file" "$dest/$target"
  cp "$work/package/LICENSE.md" "$dest/$(dirname "$target")/LICENSE.md"
  echo "$name $version" >"$dest/$target.version"
  echo "Fetched $name $version -> $dest/$target"
done
