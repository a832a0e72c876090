export async function runFlood(): Promise<void> {}
