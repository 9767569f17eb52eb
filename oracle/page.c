/* A scenario value is a 64-bit word repeated over the whole page. */
#include "oracle.h"

void page_fill(void *page, uint64_t word)
{
	volatile uint64_t *w = page;
	for (size_t i = 0; i < PAGE_WORDS; i++)
		w[i] = word;
}

uint64_t page_word(const void *page, uint32_t *uniform)
{
	const volatile uint64_t *w = page;
	uint64_t first = w[0];
	uint32_t same = 1;
	for (size_t i = 1; i < PAGE_WORDS; i++)
		if (w[i] != first)
			same = 0;
	if (uniform)
		*uniform = same;
	return first;
}
