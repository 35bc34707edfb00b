/** A young-generation garbage collection now (frees dead buffers; see young-gc.js). */
export declare function collectYoungGarbage(): void;
