/** Unix time in whole seconds: how records and the OpenAI objects state their times. */
export const nowSeconds = (): number => Math.floor(Date.now() / 1000);
