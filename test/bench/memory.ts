export async function runMemory(): Promise<void> {}
