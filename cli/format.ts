/** Number, size and progress formatting for command-line output. */

export function formatNumber(n: number, digits = 0): string {
  return n.toLocaleString("en-US", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

export function formatBytes(n: number): string {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  let v = n;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

/** `[#######---] 70%` for a value from 0 to 1. */
export function progressBar(value: number, width = 20): string {
  const v = Math.max(0, Math.min(1, value));
  const full = Math.round(v * width);
  return `[${"#".repeat(full)}${"-".repeat(width - full)}] ${
    String(Math.round(v * 100)).padStart(3)
  }%`;
}
