#!/bin/sh
# Winning recipe: digits, MLP 64->h->10, full-batch Adam lr 3e-3, 1000 epochs, symmetric noise 0.2
P=../../.venv/bin/python; W=4,6,8,12,16,20,24,32,48,64,128,256,512
$P dd.py --ds digits --n_train 1000 --epochs 1000 --lr 3e-3 --widths $W --noise 0.2 --out F20.json > F20.log 2>&1
$P dd.py --ds digits --n_train 1000 --epochs 1000 --lr 3e-3 --widths $W --noise 0.2 --seeds 2,3 --noise_seed 7 --out F20b.json > F20b.log 2>&1
$P dd.py --ds digits --n_train 1000 --epochs 1000 --lr 3e-3 --widths $W --noise 0 --out F0.json > F0.log 2>&1
