/* From a built prompt to talker input embeddings, and the one-utterance
 * synthesis path used by `qtts synth` (the batch renderer drives the same
 * pieces for many utterances). */
#ifndef QTTS_SYNTH_H
#define QTTS_SYNTH_H

#include "generate.h"
#include "model.h"
#include "prompt.h"

/* Sum the two tracks of every prompt position: T(text_id) + codec term
 * (C(id), the x-vector, or F(reference frame j)). Outputs are host arrays
 * the caller frees: emb [P][H], trailing [Q][H], tts_pad [H].
 * xvector [H] is required when the prompt has a SPEAKER slot; ref_codes
 * [n_ref][G] when it has REF_FRAME terms. */
qtts_status qtts_prompt_embed(const qtts_model *m, const qtts_prompt *p, const float *xvector, const int32_t *ref_codes, int n_ref,
                              float **emb, float **trailing, float **tts_pad, qtts_err *err);

#endif
