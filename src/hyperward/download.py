"""Downloads for `hyperward db update`: plain urllib with a timeout, a size limit and a progress bar."""

from __future__ import annotations

import urllib.error
import urllib.request

MAX_DOWNLOAD = 2 * 1024 * 1024 * 1024


class DownloadError(Exception):
    pass


def download(url: str, dest: str, *, timeout: float = 60.0, show_progress: bool = True, limit: int = MAX_DOWNLOAD) -> int:
    """Fetch url into dest; returns the byte count. Only http(s) and file URLs."""
    if not url.startswith(("http://", "https://", "file://")):
        raise DownloadError("only http://, https:// and file:// URLs are supported")
    request = urllib.request.Request(url, headers={"User-Agent": "hyperward"})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 (scheme checked above)
    except urllib.error.HTTPError as exc:
        raise DownloadError(f"HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise DownloadError(str(getattr(exc, "reason", exc))) from None
    total = int(response.headers.get("Content-Length") or 0) or None
    done = 0
    try:
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

        with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                      disable=not show_progress, transient=True) as progress, open(dest, "wb") as out:
            task = progress.add_task(url.rsplit("/", 1)[-1] or url, total=total)
            while True:
                chunk = response.read(1 << 16)
                if not chunk:
                    break
                done += len(chunk)
                if done > limit:
                    raise DownloadError(f"larger than {limit} bytes; abandoned")
                out.write(chunk)
                progress.update(task, advance=len(chunk))
    except (OSError, TimeoutError) as exc:
        raise DownloadError(f"interrupted after {done} bytes ({exc})") from None
    finally:
        response.close()
    if total is not None and done != total:
        raise DownloadError(f"truncated: {done} of {total} bytes")
    return done
